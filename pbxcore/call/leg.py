"""The SIP side of one inbound call: the INVITE server transaction, then the dialog (RFC 3261 §13).

`InboundLeg` turns "ring", "answer", "reject" and "hang up" into the right SIP messages and
remembers what it did, so the call layer never builds a message itself.  BYE is sent to the
address the INVITE came from (symmetric routing: works behind NAT and for pyVoIP, whose Contact
may not be reachable), with Request-URI and Route from the dialog.

A hang-up before the caller's ACK waits for it (RFC 3261 §15: the callee "MUST NOT send a BYE on
a confirmed dialog until it has received an ACK for its 2xx response or until the server
transaction times out"): over a lossy path the BYE would otherwise overtake a lost 200 OK, and a
caller that never saw the 200 cannot match the BYE to a call.
"""

from __future__ import annotations

import logging
import secrets
from typing import Protocol

from pbxcore.sip.build import make_response, new_branch
from pbxcore.sip.dialog import Dialog
from pbxcore.sip.message import Request
from pbxcore.sip.peer import Peer
from pbxcore.transport.sip_endpoint import SipEndpoint

log = logging.getLogger("pbxcore.call")

#: The methods the switch accepts, in every Allow it sends (OPTIONS, 405/501, each INVITE and
#: 200 OK): REFER is there because agents transfer calls with it (RFC 3515 §2.4.1).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, REFER"


class CallLeg(Protocol):
    """The first party of a `Call`, as the call layer drives it: an `InboundLeg` (the caller's
    INVITE) or, for a call the switch placed itself, `pbxcore.call.originate.OriginLeg` (an
    answered `OutboundLeg` to FROM).  The switch's in-dialog routing (ACK, re-INVITE, BYE)
    reaches inbound legs only; an origin leg's dialog is routed as a dialled leg's."""

    @property
    def invite(self) -> Request | None: ...
    @property
    def dialog(self) -> Dialog | None: ...
    @property
    def local_tag(self) -> str: ...
    @property
    def contact(self) -> str: ...
    def ring(self) -> None: ...
    def answer(self, sdp: bytes) -> None: ...
    def reject(self, status: int, *, extra: tuple[tuple[str, str], ...] = ()) -> None: ...
    def bye(self, *, now: bool = False) -> None: ...
    def on_ack(self) -> None: ...
    def ack_timed_out(self) -> None: ...


def new_tag() -> str:
    return secrets.token_hex(6)


class InboundLeg:
    """Signalling state of the caller's leg: early → confirmed → terminated."""

    def __init__(self, endpoint: SipEndpoint, tx: str, invite: Request, source: Peer) -> None:
        self.endpoint = endpoint
        self.tx = tx
        self.invite = invite
        self.source = source
        self.local_tag = new_tag()
        self.final_sent: int | None = None  # status of the final response we sent
        self.dialog: Dialog | None = None
        self.bye_sent = False
        self.acked = False  # the ACK for our 2xx arrived
        self._bye_waiting = False  # hung up before the ACK: BYE when it comes (or Timer L)

    @property
    def contact(self) -> str:
        local = self.endpoint.local(self.source.transport)
        return f"<sip:pbx@{local.host}:{local.port};transport={self.source.transport}>"

    def _respond(self, status: int, *, body: bytes = b"", extra: tuple[tuple[str, str], ...] = ()) -> None:
        headers: list[tuple[str, str]] = list(extra)
        if status > 100:
            headers.append(("Contact", self.contact))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        response = make_response(
            self.invite, status, to_tag=self.local_tag, headers=headers, body=body
        )
        self.endpoint.respond(self.tx, response)

    def ring(self) -> None:
        if self.final_sent is None:
            self._respond(180)

    def answer(self, sdp: bytes) -> None:
        """Send 200 OK with our SDP answer and set up the dialog (RFC 3261 §13.3.1.4)."""
        if self.final_sent is not None:
            return
        self.final_sent = 200
        self._respond(200, body=sdp, extra=(("Allow", ALLOW),))
        self.dialog = Dialog.as_uas(self.invite, self.local_tag)

    def reject(self, status: int, *, extra: tuple[tuple[str, str], ...] = ()) -> None:
        if self.final_sent is not None:
            return
        self.final_sent = status
        self._respond(status, extra=extra)

    def on_ack(self) -> None:
        """The ACK for our 2xx: the dialog is confirmed both ways; a waiting BYE goes now."""
        self.acked = True
        if self._bye_waiting:
            self.bye()

    def ack_timed_out(self) -> None:
        """No ACK within 64*T1 (Timer L): end the dialog with BYE anyway (§13.3.1.4)."""
        self.acked = True
        self.bye()

    def bye(self, *, now: bool = False) -> None:
        """Hang up a confirmed call from our side (RFC 3261 §15.1.1), once the caller has
        ACKed our 200 OK; `now` (shutdown) does not wait for the ACK."""
        if self.dialog is None or self.bye_sent:
            return
        if not self.acked and not now:
            self._bye_waiting = True
            return
        self.bye_sent = True
        local = self.endpoint.local(self.source.transport)
        via = (
            f"SIP/2.0/{self.source.transport.upper()} {local.host}:{local.port}"
            f";branch={new_branch()};rport"
        )
        bye = self.dialog.create_request("BYE", via=via, contact=self.contact)
        self.endpoint.request(bye, self.source)
