"""Client transactions: timers A/B/D/E/F/K/M stepped, ACK for non-2xx, every 2xx passed up."""

from __future__ import annotations

import pytest

from pbxcore.sip.build import build_cancel, make_response, new_branch
from pbxcore.sip.message import Headers, Request, Response
from pbxcore.sip.peer import Peer
from pbxcore.sip.transaction import (
    ResponseReceived,
    Send,
    State,
    TimedOut,
    TransactionLayer,
    TransactionStateError,
    TransactionTerminated,
    TxOutput,
)

CALLEE = Peer("udp", "127.0.0.1", 5099)


def request(method: str, branch: str = "z9hG4bKc1", cseq: int = 1) -> Request:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport")
    h.add("Max-Forwards", "70")
    h.add("From", "<sip:pbx@127.0.0.1>;tag=pbx1")
    h.add("To", "<sip:service@127.0.0.1:5099>")
    h.add("Call-ID", "out-1@127.0.0.1")
    h.add("CSeq", f"{cseq} {method}")
    h.add("Route", "<sip:127.0.0.1:5070;lr>")
    return Request(method, "sip:service@127.0.0.1:5099", h)


def respond(req: Request, status: int) -> Response:
    return make_response(req, status, to_tag="callee" if status > 100 else None)


def run(layer: TransactionLayer, until: float) -> list[tuple[float, TxOutput]]:
    seen: list[tuple[float, TxOutput]] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        seen += [(round(deadline, 9), o) for o in layer.handle_timer(deadline)]
    return seen


def test_new_branch_has_cookie_and_uses_injected_randomness() -> None:
    assert new_branch(lambda: "abc") == "z9hG4bKabc"
    assert new_branch() != new_branch() and new_branch().startswith("z9hG4bK")


def test_invite_timer_a_doubles_without_cap_and_timer_b_times_out() -> None:
    layer = TransactionLayer()
    req = request("INVITE")
    tx, out = layer.send_request(req, CALLEE, 0.0)
    assert out == [Send(req, CALLEE)]
    seen = run(layer, 100.0)
    assert [t for t, o in seen if isinstance(o, Send)] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert (32.0, TimedOut(tx, "INVITE")) in seen and layer.state(tx) is State.TERMINATED


def test_invite_1xx_stops_retransmission_and_timer_b() -> None:
    layer = TransactionLayer()
    req = request("INVITE")
    tx, _ = layer.send_request(req, CALLEE, 0.0)
    ringing = respond(req, 180)
    assert layer.receive_response(ringing, CALLEE, 0.2) == [ResponseReceived(tx, ringing)]
    assert layer.state(tx) is State.PROCEEDING and layer.next_deadline() is None


def test_invite_non2xx_is_acked_by_the_transaction_and_retransmissions_reacked() -> None:
    layer = TransactionLayer()
    req = request("INVITE")
    tx, _ = layer.send_request(req, CALLEE, 0.0)
    busy = respond(req, 486)
    out = layer.receive_response(busy, CALLEE, 0.1)
    assert out[1] == ResponseReceived(tx, busy)
    ack = out[0]  # the ACK leaves before the TU sees the response (it may re-send, e.g. on 407)
    assert isinstance(ack, Send) and isinstance(ack.message, Request) and ack.peer == CALLEE
    # §17.1.1.3: same R-URI, top Via (same branch), From, Call-ID, Route; To from the response
    assert ack.message.method == "ACK" and ack.message.uri == req.uri
    assert ack.message.headers.get_all("Via") == req.headers.get_all("Via")
    assert ack.message.headers.get("To") == "<sip:service@127.0.0.1:5099>;tag=callee"
    assert ack.message.headers.get("CSeq") == "1 ACK"
    assert ack.message.headers.get("Route") == "<sip:127.0.0.1:5070;lr>"
    assert layer.receive_response(busy, CALLEE, 1.0) == [ack]  # absorbed, re-ACKed, not to TU
    assert run(layer, 100.0) == [(32.1, TransactionTerminated(tx))]  # Timer D


def test_invite_every_2xx_goes_to_tu_until_timer_m() -> None:
    layer = TransactionLayer()
    req = request("INVITE")
    tx, _ = layer.send_request(req, CALLEE, 0.0)
    ok = respond(req, 200)
    assert layer.receive_response(ok, CALLEE, 0.1) == [ResponseReceived(tx, ok)]
    assert layer.receive_response(ok, CALLEE, 0.6) == [ResponseReceived(tx, ok)]
    assert layer.state(tx) is State.ACCEPTED
    assert layer.receive_response(respond(req, 180), CALLEE, 0.7) == []
    assert run(layer, 100.0) == [(32.1, TransactionTerminated(tx))]
    assert layer.receive_response(ok, CALLEE, 40.0) == []  # stray: dropped


def test_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    layer = TransactionLayer()
    tx, _ = layer.send_request(request("OPTIONS"), CALLEE, 0.0)
    seen = run(layer, 100.0)
    assert [t for t, o in seen if isinstance(o, Send)] == [
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert (32.0, TimedOut(tx, "OPTIONS")) in seen


def test_non_invite_proceeding_retransmits_at_t2_then_completed_timer_k() -> None:
    layer = TransactionLayer()
    req = request("BYE", cseq=2)
    tx, _ = layer.send_request(req, CALLEE, 0.0)
    layer.receive_response(respond(req, 100), CALLEE, 0.1)
    assert layer.state(tx) is State.PROCEEDING
    assert [t for t, o in run(layer, 5.0) if isinstance(o, Send)] == [0.5, 4.5]
    ok = respond(req, 200)
    assert layer.receive_response(ok, CALLEE, 5.0) == [ResponseReceived(tx, ok)]
    assert layer.receive_response(ok, CALLEE, 5.1) == []  # absorbed in Completed
    assert run(layer, 100.0) == [(10.0, TransactionTerminated(tx))]  # K = T4


def test_cancel_is_its_own_client_transaction_beside_the_invite() -> None:
    layer = TransactionLayer()
    inv = request("INVITE")
    itx, _ = layer.send_request(inv, CALLEE, 0.0)
    layer.receive_response(respond(inv, 180), CALLEE, 0.1)
    cancel = build_cancel(inv)
    ctx, out = layer.send_request(cancel, CALLEE, 1.0)
    assert ctx != itx and out == [Send(cancel, CALLEE)]
    ok = respond(cancel, 200)
    assert layer.receive_response(ok, CALLEE, 1.1) == [ResponseReceived(ctx, ok)]
    term = respond(inv, 487)
    assert layer.receive_response(term, CALLEE, 1.2)[1] == ResponseReceived(itx, term)


def test_tcp_client_no_retransmission_b_still_times_out_and_k_is_zero() -> None:
    tcp = Peer("tcp", "127.0.0.1", 5099)
    layer = TransactionLayer()
    tx, _ = layer.send_request(request("INVITE"), tcp, 0.0)
    seen = run(layer, 100.0)
    assert not [o for _, o in seen if isinstance(o, Send)]
    assert (32.0, TimedOut(tx, "INVITE")) in seen
    req = request("OPTIONS", branch="z9hG4bKc2")
    otx, _ = layer.send_request(req, tcp, 0.0)
    ok = respond(req, 200)
    assert layer.receive_response(ok, tcp, 0.1) == [
        ResponseReceived(otx, ok), TransactionTerminated(otx)]


def test_ack_is_sent_without_transaction_and_bad_branches_refused() -> None:
    layer = TransactionLayer()
    ack = request("ACK", branch="z9hG4bKack")
    assert layer.send_request(ack, CALLEE, 0.0) == ("", [Send(ack, CALLEE)])
    layer.send_request(request("OPTIONS"), CALLEE, 0.0)
    with pytest.raises(TransactionStateError):
        layer.send_request(request("OPTIONS"), CALLEE, 0.0)  # branch reused
    with pytest.raises(TransactionStateError):
        layer.send_request(request("OPTIONS", branch="1234"), CALLEE, 0.0)  # no cookie


def test_response_with_unknown_branch_or_broken_via_is_dropped() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS")
    layer.send_request(req, CALLEE, 0.0)
    other = respond(request("OPTIONS", branch="z9hG4bKother"), 200)
    assert layer.receive_response(other, CALLEE, 0.1) == []
    broken = respond(req, 200)
    broken.headers.set("Via", "nonsense")
    assert layer.receive_response(broken, CALLEE, 0.1) == []


def test_every_timer_due_at_once_fires_in_one_call() -> None:
    """A late timer tick (a busy loop) must not lose the earlier of two due timers."""
    layer = TransactionLayer()
    first, second = request("INVITE", "z9hG4bKa1"), request("OPTIONS", "z9hG4bKa2", cseq=2)
    layer.send_request(first, CALLEE, 0.0)
    layer.send_request(second, CALLEE, 0.0)
    out = layer.handle_timer(0.6)  # Timer A (INVITE) and Timer E (OPTIONS) are both due
    assert [o.message for o in out if isinstance(o, Send)] == [first, second]
