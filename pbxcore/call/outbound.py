"""One dialled leg of a B2BUA call: the switch as UAC (RFC 3261 §13.2, §15).

`OutboundLeg` sends the INVITE with our SDP offer, follows the provisional and final responses,
ACKs every 2xx (RFC 3261 §13.2.2.4), answers the far end's BYE, and can CANCEL (§9.1) or BYE.
A 2xx that arrives after our CANCEL is ACKed and then ended with BYE (§9.1; pyVoIP answers a
cancelled INVITE, docs/peers.md §1c row 11).  The leg reports one `DialResult` when ringing ends and
sets `ended` when an answered leg is over.  It never builds the caller's messages: legs are
independent dialogs joined only by the media bridge.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pbxcore.call.leg import ALLOW
from pbxcore.media.session import MediaSession
from pbxcore.sip.address import NameAddr, parse_name_addr, quote
from pbxcore.sip.build import build_cancel, make_response, new_branch
from pbxcore.sip.dialog import Dialog
from pbxcore.sip.message import Headers, Request, Response, SipSyntaxError
from pbxcore.sip.peer import Peer
from pbxcore.sip.registration import Credentials, authorize
from pbxcore.sip.sdp import AudioAnswer, SdpError, build_answer, negotiate, parse_sdp
from pbxcore.sip.uri import parse_uri
from pbxcore.transport.sip_endpoint import SipEndpoint

log = logging.getLogger("pbxcore.dial")

#: RFC 3261 §21 final status → the `dial` event's PBX_DIAL_STATUS.
STATUS_OF_CODE = {486: "busy", 600: "busy", 480: "noanswer", 408: "noanswer", 603: "declined",
                  487: "canceled"}


def dial_status(code: int) -> str:
    return STATUS_OF_CODE.get(code, "failed")


@dataclass(frozen=True)
class Target:
    """Where one leg goes: the Request-URI and the address the INVITE is sent to."""

    label: str  # what the script asked for: "1002", "sip:bob@host"
    uri: str  # Request-URI
    peer: Peer  # where to send it (a registered phone's source address, or the URI's host)
    credentials: Credentials | None = None  # answer the far end's 401/407 (trunks)
    from_host: str | None = None  # host part of our From (a trunk's domain), else our address
    from_user: str | None = None  # user part of our From when the trunk requires its account
    route: tuple[str, ...] = ()  # pre-loaded route set (a binding's Path, RFC 3327 §5.3)


@dataclass(frozen=True)
class DialResult:
    """How ringing one leg ended."""

    status: str  # answered | busy | noanswer | declined | failed | canceled
    code: int | None  # the SIP final status, if one came
    reason: str = ""


class LegHost(Protocol):
    """What a leg needs from the switch: sending, and routing responses/BYEs back to it."""

    endpoint: SipEndpoint

    def watch_client_tx(self, tx: str, leg: OutboundLeg) -> None: ...
    def watch_dialog(self, call_id: str, leg: OutboundLeg) -> None: ...
    def forget_leg(self, leg: OutboundLeg) -> None: ...


class OutboundLeg:
    """INVITE → (1xx) → 2xx/failure; then confirmed until BYE from either side."""

    def __init__(self, host: LegHost, target: Target, media: MediaSession, offer: bytes, *,
                 caller: str, caller_name: str, max_forwards: int = 70,
                 extra_headers: Sequence[tuple[str, str]] = ()) -> None:
        self.host = host
        self.target = target
        self.media = media
        self.offer = offer
        self.caller = caller
        self.caller_name = caller_name
        self.max_forwards = max_forwards
        self.extra_headers = tuple(extra_headers)  # e.g. the queue's screen pop (X-Pbx-Var-*)
        self.call_id = f"{uuid.uuid4().hex}@pbxcore"
        self.local_tag = secrets.token_hex(6)
        self.invite: Request | None = None
        self.invite_tx = ""
        self.dialog: Dialog | None = None
        self.result: asyncio.Future[DialResult] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.Event()
        self.ringing_since: float | None = None
        self.started = time.monotonic()
        self.answered_at: float | None = None
        self.cancelled = False
        self.provisional = False  # a 1xx arrived: a CANCEL may be sent (RFC 3261 §9.1)
        self.bye_sent = False
        self.hangup_code: int | None = None
        self.changed = asyncio.Event()  # set on REFER or a hold/unhold re-INVITE
        self.refer_to: str | None = None  # a REFER's target not yet acted on
        self.referred_by: str = ""
        self.held = False
        # Our o= line as offered (RFC 3264 §8): kept, the version one higher for each new SDP.
        origin = parse_sdp(offer).origin
        self.sdp_session, self.sdp_version = int(origin[1]), int(origin[2])

    # -- sending ------------------------------------------------------------------------------

    def _via(self) -> str:
        local = self.host.endpoint.local(self.target.peer.transport)
        return (f"SIP/2.0/{self.target.peer.transport.upper()} {local.host}:{local.port}"
                f";branch={new_branch()};rport")

    @property
    def contact(self) -> str:
        local = self.host.endpoint.local(self.target.peer.transport)
        return f"<sip:pbx@{local.host}:{local.port};transport={self.target.peer.transport}>"

    def start(self) -> None:
        local = self.host.endpoint.local(self.target.peer.transport)
        display = f"{quote(self.caller_name)} " if self.caller_name else ""
        headers = Headers([
            ("Via", self._via()),
            ("Max-Forwards", str(self.max_forwards)),
            ("From", f"{display}<sip:{self.caller}@{self.target.from_host or local.host}>"
                     f";tag={self.local_tag}"),
            ("To", str(NameAddr(None, self.target.uri))),
            ("Call-ID", self.call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact),
            ("Allow", ALLOW),  # REFER included: agents transfer with it
            # A registered phone behind a proxy (Path): the proxy is our first hop and loose
            # routes on (RFC 3261 §16.12, §8.1.2): the Request-URI stays the contact.
            *(("Route", str(NameAddr(None, uri))) for uri in self.target.route),
            *self.extra_headers,
            ("Content-Type", "application/sdp"),
        ])
        self.invite = Request("INVITE", self.target.uri, headers, self.offer)
        self.host.watch_dialog(self.call_id, self)
        self.invite_tx = self.host.endpoint.request(self.invite, self.target.peer)
        self.host.watch_client_tx(self.invite_tx, self)
        log.info("dial %s: INVITE %s via %s:%s", self.target.label, self.target.uri,
                 self.target.peer.host, self.target.peer.port)

    def cancel(self) -> None:
        """Stop ringing (§9.1); a 2xx that still comes is ACKed and BYEd in on_response."""
        if self.result.done() or self.invite is None or self.cancelled:
            return
        self.cancelled = True
        if not self.provisional:
            # RFC 3261 §9.1: a CANCEL MUST NOT be sent before a provisional response arrived
            # (the far end may not have the INVITE yet); it goes with the first 1xx.  Should
            # none come, Timer B ends the INVITE transaction and the leg fails anyway.
            return
        self._send_cancel()

    def _send_cancel(self) -> None:
        assert self.invite is not None
        tx = self.host.endpoint.request(build_cancel(self.invite), self.target.peer)
        self.host.watch_client_tx(tx, self)

    def hangup(self) -> None:
        """End the leg from our side: BYE when answered, CANCEL while ringing."""
        if self.dialog is None:
            self.cancel()
            return
        if self.bye_sent or self.ended.is_set():
            self.ended.set()
            return
        self.bye_sent = True
        bye = self.dialog.create_request("BYE", via=self._via(), contact=self.contact)
        tx = self.host.endpoint.request(bye, self.target.peer)
        self.host.watch_client_tx(tx, self)
        self.ended.set()

    # -- receiving ----------------------------------------------------------------------------

    def on_response(self, tx: str, response: Response) -> None:
        method = response.cseq[1]
        if method != "INVITE" or self.invite is None:
            return  # answers to our CANCEL/BYE: nothing more to do
        if response.status < 200:
            if response.status in (180, 183) and self.ringing_since is None:
                self.ringing_since = time.monotonic()
            if not self.provisional:
                self.provisional = True
                if self.cancelled and not self.result.done():
                    self._send_cancel()  # held back until now (§9.1)
            return
        if response.status < 300:
            self._answered(response)
            return
        if response.status in (401, 407) and self._authenticate(response):
            return
        self._finish(DialResult(dial_status(response.status), response.status, response.reason))

    def _authenticate(self, response: Response) -> bool:
        """Re-send the INVITE answering a trunk's challenge (RFC 3261 §22.2), once per nonce."""
        if self.target.credentials is None or self.invite is None or self.cancelled:
            return False
        retry = authorize(self.invite, response, self.target.credentials)
        if retry is None:
            return False
        self.invite = retry
        self.invite_tx = self.host.endpoint.request(retry, self.target.peer)
        self.host.watch_client_tx(self.invite_tx, self)
        log.info("dial %s: answering %d from %s", self.target.label, response.status,
                 self.target.peer.host)
        return True

    def _answered(self, response: Response) -> None:
        assert self.invite is not None
        dialog = self.dialog or Dialog.as_uac(self.invite, response)
        ack = dialog.create_request("ACK", via=self._via())
        self.host.endpoint.request(ack, self.target.peer)  # every 2xx gets its ACK
        if self.dialog is not None:
            return  # a retransmitted 2xx: ACKed again, nothing else
        self.dialog = dialog
        answer = self._answer_sdp(response)
        if self.cancelled or self.result.done() or answer is None:
            # Too late (we cancelled, another leg won) or nothing we can play: hang up (§9.1).
            self.hangup()
            self._finish(DialResult("canceled" if answer else "failed", response.status,
                                    "answered after cancel" if answer else "no usable SDP"))
            return
        self.media.configure(answer)
        self.answered_at = time.monotonic()
        self._finish(DialResult("answered", response.status))

    @staticmethod
    def _answer_sdp(response: Response) -> AudioAnswer | None:
        try:
            return negotiate(parse_sdp(response.body)) if response.body else None
        except SdpError:
            return None

    def on_timeout(self, tx: str, method: str) -> None:
        if tx == self.invite_tx:
            self._finish(DialResult("noanswer" if self.ringing_since else "failed", 408,
                                    "no response"))

    def on_bye(self, tx: str, request: Request) -> None:
        """The callee hung up (§15.1.2)."""
        self.host.endpoint.respond(tx, make_response(request, 200))
        self.ended.set()

    def on_reinvite(self, tx: str, request: Request, local_host: str) -> None:
        """The callee changes the session (hold, RFC 3264 §8.4): answer from our media."""
        try:
            offer = negotiate(parse_sdp(request.body)) if request.body else None
        except SdpError:
            offer = None
        if offer is None or self.dialog is None:
            self.host.endpoint.respond(tx, make_response(request, 488))
            return
        self.media.configure(offer)
        self.sdp_version += 1
        sdp = build_answer(offer, local_host=local_host, local_port=self.media.local_port,
                           session_id=self.sdp_session, version=self.sdp_version)
        self.host.endpoint.respond(tx, make_response(
            request, 200, headers=[("Contact", self.contact), ("Allow", ALLOW),
                                   ("Content-Type", "application/sdp")],
            body=sdp))
        self.held = offer.hold or offer.direction in ("recvonly", "inactive")
        self.changed.set()

    def on_refer(self, tx: str, request: Request) -> None:
        """Blind transfer asked by the callee (RFC 3515): 202, then NOTIFYs with progress."""
        refer_to = request.headers.get("Refer-To")
        if refer_to is None or self.dialog is None:
            self.host.endpoint.respond(tx, make_response(request, 400, "Missing Refer-To"))
            return
        try:
            uri = parse_name_addr(refer_to).uri
            target = parse_uri(uri)
        except SipSyntaxError:
            self.host.endpoint.respond(tx, make_response(request, 400, "Bad Refer-To"))
            return
        self.host.endpoint.respond(tx, make_response(request, 202))
        self.refer_to = target.user_unescaped or uri
        self.referred_by = request.headers.get("Referred-By") or ""
        self.notify_refer(100, "Trying")
        self.changed.set()

    def notify_refer(self, status: int, reason: str) -> None:
        """NOTIFY the transferor with a message/sipfrag of the transfer's progress (§2.4.5)."""
        if self.dialog is None or self.bye_sent:
            return
        notify = self.dialog.create_request(
            "NOTIFY", via=self._via(), contact=self.contact,
            body=f"SIP/2.0 {status} {reason}\r\n".encode(),
            content_type="message/sipfrag;version=2.0")
        notify.headers.add("Event", "refer")
        final = status >= 200
        notify.headers.add("Subscription-State",
                           "terminated;reason=noresource" if final else "active;expires=60")
        tx = self.host.endpoint.request(notify, self.target.peer)
        self.host.watch_client_tx(tx, self)

    def matches(self, request: Request) -> bool:
        return self.dialog is not None and self.dialog.matches(request)

    def _finish(self, result: DialResult) -> None:
        if not self.result.done():
            self.result.set_result(result)
        if result.status != "answered":
            self.ended.set()

    def rang_seconds(self) -> float:
        end = self.answered_at or time.monotonic()
        return round(end - (self.ringing_since or self.started), 3)
