"""The message-waiting lamps: `message-summary` subscriptions (RFC 6665, RFC 3842) and NOTIFYs.

A phone SUBSCRIBEs to `message-summary` (authenticated like a REGISTER: the digest user is the
extension whose lamp it is).  The switch answers 200 with the Expires it grants and a To tag
(the subscription's dialog, RFC 6665 §4.2.1), then NOTIFYs at once with the current counts
(§4.2.1.2) and again whenever a box the extension owns changes; a refresh SUBSCRIBE in the
dialog gets the state again, an un-SUBSCRIBE (Expires: 0) a final NOTIFY with
``Subscription-State: terminated`` (§4.2.1.4).  Expired subscriptions are dropped when next
looked at (a phone refreshes before expiry).  The counts are the sum over the boxes the
extension owns.  Boxes with ``mwi = "unsolicited"`` also NOTIFY their owners' registered phones
out of any dialog, as Asterisk's ``mwi_unsolicited``, for phones that never subscribe.

State kept per subscription: the dialog (for in-dialog NOTIFYs), where the phone is, the expiry.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pbxcore.sip.address import parse_name_addr
from pbxcore.sip.build import make_response, new_branch
from pbxcore.sip.dialog import Dialog
from pbxcore.sip.message import Headers, Request
from pbxcore.sip.mwi import (
    CONTENT_TYPE,
    MESSAGE_SUMMARY,
    MIN_EXPIRES,
    IntervalTooBrief,
    event_package,
    subscription_expires,
    summary_body,
)
from pbxcore.sip.peer import Peer

if TYPE_CHECKING:
    from pbxcore.call.call import CallDeps

log = logging.getLogger("pbxcore.mwi")


@dataclass
class Subscription:
    extension: str
    dialog: Dialog
    peer: Peer
    expires_at: float  # monotonic


class Mwi:
    """Subscriptions by dialog id (Call-ID, our tag); owned by the switch."""

    def __init__(self, deps: CallDeps, clock: Callable[[], float] = time.monotonic) -> None:
        self.deps = deps
        self.clock = clock
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self._notify_tx: dict[str, tuple[str, str]] = {}  # our NOTIFY's transaction → sub
        self._tasks: set[asyncio.Task[None]] = set()

    # -- SUBSCRIBE ------------------------------------------------------------------------

    def subscribe(self, tx: str, request: Request, source: Peer, user: str) -> None:
        """Answer an authenticated SUBSCRIBE of `user`'s phone and NOTIFY it."""
        endpoint = self.deps.endpoint
        if event_package(request.headers.get("Event")) != MESSAGE_SUMMARY:
            endpoint.respond(tx, make_response(request, 489, headers=[
                ("Allow-Events", MESSAGE_SUMMARY)]))  # RFC 6665 §4.2.1.1
            return
        try:
            expires = subscription_expires(request.headers.get("Expires"))
        except IntervalTooBrief:
            endpoint.respond(tx, make_response(request, 423, headers=[
                ("Min-Expires", str(MIN_EXPIRES))]))
            return
        to_tag = _to_tag(request)
        if to_tag:  # a refresh or un-SUBSCRIBE in an existing subscription dialog
            sub = self.subscriptions.get((request.call_id, to_tag))
            if sub is None or sub.extension != user:
                endpoint.respond(tx, make_response(request, 481))
                return
            sub.dialog.update_remote_cseq(request)
        else:
            tag = secrets.token_hex(6)
            sub = Subscription(user, Dialog.as_uas(request, tag), source, 0.0)
        sub.peer = source
        endpoint.respond(tx, make_response(request, 200, to_tag=sub.dialog.local_tag, headers=[
            ("Expires", str(expires)), ("Contact", self._contact(source))]))
        key = (sub.dialog.call_id, sub.dialog.local_tag)
        if expires == 0:
            self.subscriptions.pop(key, None)
        else:
            sub.expires_at = self.clock() + expires
            self.subscriptions[key] = sub
            asyncio.get_running_loop().call_later(expires, self._expire, key)
        log.info("SUBSCRIBE message-summary %s from %s:%s, expires %s", user, source.host,
                 source.port, expires)
        self._spawn(self._notify_one(sub, expires))

    def _expire(self, key: tuple[str, str]) -> None:
        """Not refreshed in time: a last NOTIFY says so (RFC 6665 §4.2.2, reason timeout)."""
        sub = self.subscriptions.get(key)
        if sub is not None and sub.expires_at <= self.clock():
            del self.subscriptions[key]
            self._spawn(self._notify_one(sub, 0))

    def on_response(self, tx: str, status: int) -> bool:
        """A phone's answer to one of our NOTIFYs; True if it was ours.  481 (or another
        failure but 408/5xx) ends the subscription (RFC 6665 §4.1.3)."""
        key = self._notify_tx.pop(tx, None)
        if key is None:
            return False
        if status == 481 or 400 <= status < 500 and status != 408:
            self.subscriptions.pop(key, None)
        return True

    # -- changes --------------------------------------------------------------------------

    async def box_changed(self, box: str) -> None:
        """Every owner of `box` gets its lamp's new state."""
        config = self.deps.config
        spec = config.voicemail_box(box)
        if spec is None:
            return
        for owner in spec.owners:
            await self.extension_changed(owner)

    async def extension_changed(self, extension: str) -> None:
        new, old = await self.counts(extension)
        now = self.clock()
        for key, sub in list(self.subscriptions.items()):
            if sub.expires_at <= now:
                del self.subscriptions[key]
            elif sub.extension == extension:
                self._send(sub, new, old, int(sub.expires_at - now))
        if any(b.mwi == "unsolicited" for b in self.deps.config.voicemail_owned(extension)):
            self._unsolicited(extension, new, old)

    async def counts(self, extension: str) -> tuple[int, int]:
        """(new, heard) over every box `extension` owns."""
        new = old = 0
        for box in self.deps.config.voicemail_owned(extension):
            n, o = await self.deps.store.voicemail_counts(box.box)
            new, old = new + n, old + o
        return new, old

    # -- NOTIFY ---------------------------------------------------------------------------

    async def _notify_one(self, sub: Subscription, expires: int) -> None:
        new, old = await self.counts(sub.extension)
        self._send(sub, new, old, expires)

    def _send(self, sub: Subscription, new: int, old: int, expires: int) -> None:
        state = f"active;expires={expires}" if expires > 0 else "terminated;reason=timeout"
        notify = sub.dialog.create_request(
            "NOTIFY", via=self._via(sub.peer), contact=self._contact(sub.peer),
            body=summary_body(new, old, self._account(sub.peer)), content_type=CONTENT_TYPE)
        notify.headers.add("Event", MESSAGE_SUMMARY)
        notify.headers.add("Subscription-State", state)  # RFC 6665 §4.2.2: mandatory
        tx = self.deps.endpoint.request(notify, sub.peer)
        if len(self._notify_tx) > 10000:  # answers that never came (the peer is gone)
            self._notify_tx.clear()
        self._notify_tx[tx] = (sub.dialog.call_id, sub.dialog.local_tag)

    def _unsolicited(self, extension: str, new: int, old: int) -> None:
        registrar = self.deps.registrar
        if registrar is None:
            return
        realm = self.deps.config.sip.realm
        for binding in registrar.bindings(extension):
            peer = binding.source
            h = Headers()
            h.add("Via", self._via(peer))
            h.add("Max-Forwards", "70")
            h.add("From", f"<sip:{self._code()}@{realm}>;tag={secrets.token_hex(6)}")
            h.add("To", f"<sip:{extension}@{realm}>")
            h.add("Call-ID", f"{secrets.token_hex(12)}@pbxcore")
            h.add("CSeq", "1 NOTIFY")
            h.add("Contact", self._contact(peer))
            h.add("Event", MESSAGE_SUMMARY)
            h.add("Subscription-State", "active")
            h.add("Content-Type", CONTENT_TYPE)
            body = summary_body(new, old, self._account(peer))
            self.deps.endpoint.request(Request("NOTIFY", binding.contact, h, body), peer)

    def _via(self, peer: Peer) -> str:
        local = self.deps.endpoint.local(peer.transport)
        return (f"SIP/2.0/{peer.transport.upper()} {local.host}:{local.port}"
                f";branch={new_branch()};rport")

    def _contact(self, peer: Peer) -> str:
        local = self.deps.endpoint.local(peer.transport)
        return f"<sip:pbx@{local.host}:{local.port};transport={peer.transport}>"

    def _code(self) -> str:
        return self.deps.config.voicemail_access.code or "voicemail"

    def _account(self, peer: Peer) -> str:
        """Message-Account (RFC 3842 §5.2): what the owner dials to listen."""
        local = self.deps.endpoint.local(peer.transport)
        return f"sip:{self._code()}@{local.host}:{local.port}"

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _to_tag(request: Request) -> str | None:
    return parse_name_addr(request.headers.get("To") or "").tag
