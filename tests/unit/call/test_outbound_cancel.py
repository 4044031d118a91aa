"""RFC 3261 §9.1: a CANCEL waits for a provisional response; it goes with the first 1xx."""

from __future__ import annotations

from dataclasses import dataclass, field

from pbxcore.call.outbound import OutboundLeg, Target
from pbxcore.sip.build import make_response
from pbxcore.sip.message import Request
from pbxcore.sip.peer import Peer
from pbxcore.sip.sdp import build_offer
from pbxcore.transport.sip_endpoint import ListenSpec


@dataclass
class Wire:
    """The endpoint as a leg sees it: what it sends, nothing on the network."""

    sent: list[Request] = field(default_factory=list)

    def local(self, transport: str) -> ListenSpec:
        return ListenSpec(transport, "127.0.0.1", 5060)

    def request(self, message: Request, peer: Peer) -> str:
        self.sent.append(message)
        return f"tx{len(self.sent)}"


@dataclass
class Host:
    endpoint: Wire = field(default_factory=Wire)

    def watch_client_tx(self, tx: str, leg: OutboundLeg) -> None: ...
    def watch_dialog(self, call_id: str, leg: OutboundLeg) -> None: ...
    def forget_leg(self, leg: OutboundLeg) -> None: ...


def ringing_leg() -> tuple[Host, OutboundLeg]:
    host = Host()
    leg = OutboundLeg(host, Target("1002", "sip:1002@127.0.0.1:5070",  # type: ignore[arg-type]
                                   Peer("udp", "127.0.0.1", 5070)),
                      None, build_offer("127.0.0.1", 40000, 1, 1),  # type: ignore[arg-type]
                      caller="1001", caller_name="")
    leg.start()
    return host, leg


async def test_no_cancel_before_a_provisional_response() -> None:
    host, leg = ringing_leg()
    assert leg.invite is not None
    leg.hangup()  # the caller gave up before the callee said anything
    assert [r.method for r in host.endpoint.sent] == ["INVITE"]
    leg.on_response("tx1", make_response(leg.invite, 100))
    assert [r.method for r in host.endpoint.sent] == ["INVITE", "CANCEL"]
    leg.on_response("tx1", make_response(leg.invite, 180, to_tag="t1"))
    assert [r.method for r in host.endpoint.sent] == ["INVITE", "CANCEL"]  # only once


async def test_cancel_at_once_once_the_callee_rings() -> None:
    host, leg = ringing_leg()
    assert leg.invite is not None
    leg.on_response("tx1", make_response(leg.invite, 180, to_tag="t1"))
    leg.hangup()
    assert [r.method for r in host.endpoint.sent] == ["INVITE", "CANCEL"]
