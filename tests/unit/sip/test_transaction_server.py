"""Server transactions: pyVoIP and sipp sequences, timers G/H/I/J/L stepped, never slept."""

from __future__ import annotations

import pytest

from pbxcore.sip.build import build_cancel, header_tag, make_response
from pbxcore.sip.message import Request, Response, parse_message
from pbxcore.sip.peer import Peer
from pbxcore.sip.transaction import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    Send,
    State,
    TimedOut,
    TransactionLayer,
    TransactionStateError,
    TransactionTerminated,
    TxOutput,
)

PHONE = Peer("udp", "127.0.0.1", 5061)
PYVOIP_BRANCH = "z9hG4bK4e07408562bedb8b60ce05c1d"  # docs/peers.md §1c row 1: always this one
CALL_ID = "8d2d8e7d7f0f0a4e2e6a1c3b5d7f9e1a@127.0.0.1:5061"


def pyvoip(method: str, *, cseq: int = 1, branch: str = PYVOIP_BRANCH, uri: str = "sip:2000@127.0.0.1",
           to: str = "<sip:2000@127.0.0.1>", via: str = "127.0.0.1:5061", call_id: str = CALL_ID,
           extra: str = "", from_tag: str = "a1b2c3d4") -> Request:
    """A request the way pyVoIP 1.6.8's gen_invite / gen_ack / gen_bye writes it."""
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:1001@127.0.0.1:5061>\r\n"
        f"To: {to}\r\n"
        f"From: <sip:1001@127.0.0.1>;tag={from_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"{extra}"
        "User-Agent: pyVoIP 1.6.8\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


def sends(out: list[TxOutput]) -> list[int | str]:
    """Status codes / methods of the Send outputs, in order."""
    return [m.message.status if isinstance(m.message, Response) else m.message.method
            for m in out if isinstance(m, Send)]


def of(out: list[TxOutput], kind: type) -> list[TxOutput]:
    return [o for o in out if isinstance(o, kind)]


def run(layer: TransactionLayer, until: float) -> list[tuple[float, TxOutput]]:
    """Step time from deadline to deadline up to `until`."""
    seen: list[tuple[float, TxOutput]] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        seen += [(round(deadline, 9), o) for o in layer.handle_timer(deadline)]
    return seen


def new_invite(layer: TransactionLayer, req: Request | None = None, peer: Peer = PHONE
               ) -> tuple[str, Request]:
    out = layer.receive_request(req or pyvoip("INVITE"), peer, 0.0)
    assert sends(out) == [100]  # at once: pyVoIP blocks forever without it (§1c row 7)
    assert header_tag(out[0].message.headers.get("To") or "") is None  # type: ignore[union-attr]
    (got,) = of(out, RequestReceived)
    assert isinstance(got, RequestReceived)
    return got.server_tx, got.request


def test_invite_gets_100_then_one_request_received_and_retransmission_gets_last_response() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    assert sends(layer.receive_request(pyvoip("INVITE"), PHONE, 0.3)) == [100]
    layer.send_response(tx, make_response(req, 180, to_tag="srv1"), 0.4)
    again = layer.receive_request(pyvoip("INVITE"), PHONE, 0.5)
    assert sends(again) == [180] and not of(again, RequestReceived)


def test_486_retransmitted_with_timer_g_until_timer_h() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    out = layer.send_response(tx, make_response(req, 486, to_tag="srv1"), 0.0)
    assert sends(out) == [486]
    seen = run(layer, 40.0)
    resent = [t for t, o in seen if isinstance(o, Send)]
    assert resent[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]  # T1 doubling, capped at T2 = 4
    assert all(b - a <= 4.0 for a, b in zip(resent, resent[1:], strict=False))
    timeouts = [(t, o) for t, o in seen if isinstance(o, TimedOut)]
    assert timeouts == [(32.0, TimedOut(tx, "INVITE"))]  # Timer H = 64*T1
    assert layer.state(tx) is State.TERMINATED and layer.next_deadline() is None


def test_ack_for_non2xx_stops_retransmission_then_timer_i() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    layer.send_response(tx, make_response(req, 486, to_tag="srv1"), 0.0)
    assert sends(layer.handle_timer(0.5)) == [486]
    # pyVoIP's ACK: the INVITE's branch, a random To tag (not ours), R-URI from To (§1c row 3)
    ack = pyvoip("ACK", to="<sip:2000@127.0.0.1>;tag=ffffffff")
    assert layer.receive_request(ack, PHONE, 0.7) == []
    assert layer.state(tx) is State.CONFIRMED
    assert layer.receive_request(pyvoip("INVITE"), PHONE, 0.8) == []  # absorbed in Confirmed
    assert layer.next_deadline() == 5.7  # Timer I = T4
    assert run(layer, 10.0) == [(5.7, TransactionTerminated(tx))]


def test_2xx_retransmitted_until_ack_with_random_to_tag_and_ack_reported_once() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    assert sends(layer.send_response(tx, make_response(req, 200, to_tag="srv1"), 1.0)) == [200]
    assert sends(layer.handle_timer(1.5)) == [200]  # the 2xx is retransmitted (§1c row 4)
    assert layer.state(tx) is State.ACCEPTED
    ack = pyvoip("ACK", to="<sip:2000@127.0.0.1>;tag=0badc0de")
    assert layer.receive_request(ack, PHONE, 1.6) == [AckReceived(tx, ack)]
    assert layer.receive_request(ack, PHONE, 1.7) == []  # each 200 gets its own ACK: absorbed
    seen = run(layer, 100.0)
    assert not [o for _, o in seen if isinstance(o, Send | TimedOut)]
    assert seen == [(33.0, TransactionTerminated(tx))]  # Timer L = 64*T1


def test_ack_for_2xx_with_new_branch_matched_by_call_id_and_cseq() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    layer.send_response(tx, make_response(req, 200, to_tag="srv1"), 0.0)
    ack = pyvoip("ACK", branch="z9hG4bKnewbranch", uri="sip:1001@127.0.0.1:5061",
                 to="<sip:2000@127.0.0.1>;tag=srv1")
    out = layer.receive_request(ack, PHONE, 0.2)
    assert len(out) == 1 and isinstance(out[0], AckReceived) and out[0].server_tx == tx
    assert layer.handle_timer(0.5) == []  # no more 2xx retransmissions


def test_2xx_never_acked_times_out_as_ack_so_the_tu_sends_bye() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    layer.send_response(tx, make_response(req, 200, to_tag="srv1"), 0.0)
    seen = run(layer, 40.0)
    assert [t for t, o in seen if isinstance(o, Send)][:4] == [0.5, 1.5, 3.5, 7.5]
    assert [o for _, o in seen if isinstance(o, TimedOut)] == [TimedOut(tx, "ACK")]


def test_pyvoip_invite_after_401_same_branch_cseq_2_is_a_new_transaction() -> None:
    layer = TransactionLayer()
    tx1, req1 = new_invite(layer)
    layer.send_response(tx1, make_response(req1, 401, to_tag="srv1"), 0.0)
    tx2, _ = new_invite(layer, pyvoip("INVITE", cseq=2,
                                      extra='Authorization: Digest username="1001"\r\n'))
    assert tx2 != tx1
    layer.receive_request(pyvoip("ACK", cseq=1, to="<sip:2000@127.0.0.1>;tag=x"), PHONE, 0.1)
    assert layer.state(tx1) is State.CONFIRMED and layer.state(tx2) is State.PROCEEDING


@pytest.mark.parametrize("final", [200, 486])
def test_restarted_phone_reusing_branch_call_id_and_cseq_is_a_new_request(final: int) -> None:
    """Issue 9 item 9: a fresh pyVoIP process reuses the branch, Call-ID and CSeq of the last
    INVITE with a new From tag.  §8.2.2.2: a different From tag is a different request, so it
    is a new transaction, not a retransmission that gets the old call's final response."""
    layer = TransactionLayer()
    tx1, req1 = new_invite(layer)
    layer.send_response(tx1, make_response(req1, final, to_tag="srv1"), 0.0)
    old_state = layer.state(tx1)  # Accepted (2xx) or Completed (486): both still match
    out = layer.receive_request(pyvoip("INVITE", from_tag="fresh999"), PHONE, 1.0)
    assert sends(out) == [100]  # not the previous call's 200/486
    (got,) = of(out, RequestReceived)
    assert isinstance(got, RequestReceived) and got.server_tx != tx1
    assert layer.state(tx1) is old_state and layer.state(got.server_tx) is State.PROCEEDING
    # The old transaction is still there for its own retransmissions and ACK.
    assert sends(layer.receive_request(pyvoip("INVITE"), PHONE, 1.1)) == [final]
    # A CANCEL with the new From tag cancels the new INVITE only.
    cancel = build_cancel(pyvoip("INVITE", from_tag="fresh999"))
    (reported,) = of(layer.receive_request(cancel, PHONE, 1.2), CancelReceived)
    assert isinstance(reported, CancelReceived) and reported.invite_tx == got.server_tx


def test_non_invite_with_a_new_from_tag_is_a_new_transaction() -> None:
    layer = TransactionLayer()
    (first,) = of(layer.receive_request(pyvoip("REGISTER"), PHONE, 0.0), RequestReceived)
    assert isinstance(first, RequestReceived)
    layer.send_response(first.server_tx, make_response(first.request, 200, to_tag="t"), 0.0)
    assert sends(layer.receive_request(pyvoip("REGISTER"), PHONE, 0.5)) == [200]  # retransmit
    out = layer.receive_request(pyvoip("REGISTER", from_tag="other"), PHONE, 0.6)
    (second,) = of(out, RequestReceived)
    assert not sends(out) and isinstance(second, RequestReceived)
    assert second.server_tx != first.server_tx


def test_same_from_tag_but_other_call_id_is_a_new_transaction() -> None:
    layer = TransactionLayer()
    tx1, req1 = new_invite(layer)
    layer.send_response(tx1, make_response(req1, 200, to_tag="srv1"), 0.0)
    out = layer.receive_request(pyvoip("INVITE", call_id="other@h"), PHONE, 0.5)
    assert sends(out) == [100] and of(out, RequestReceived)


def test_bye_with_the_invite_branch_is_its_own_non_invite_transaction() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    layer.send_response(tx, make_response(req, 200, to_tag="srv1"), 0.0)
    layer.receive_request(pyvoip("ACK"), PHONE, 0.1)
    out = layer.receive_request(pyvoip("BYE", cseq=2, to="<sip:2000@127.0.0.1>;tag=srv1"),
                                PHONE, 5.0)
    (bye,) = of(out, RequestReceived)
    assert isinstance(bye, RequestReceived) and bye.server_tx != tx and not sends(out)
    resp = make_response(bye.request, 200)
    assert sends(layer.send_response(bye.server_tx, resp, 5.1)) == [200]
    # retransmitted BYE in Completed: last response again, not a new request
    assert sends(layer.receive_request(pyvoip("BYE", cseq=2), PHONE, 5.2)) == [200]
    seen = run(layer, 100.0)
    assert (37.1, TransactionTerminated(bye.server_tx)) in seen  # Timer J


def test_badbranch_requests_do_not_collide() -> None:
    """RFC 4475 §3.2.1: branch exactly z9hG4bK -> RFC 2543 matching, not one shared key."""
    layer = TransactionLayer()
    first = layer.receive_request(pyvoip("OPTIONS", branch="z9hG4bK", call_id="a@x"), PHONE, 0)
    second = layer.receive_request(pyvoip("OPTIONS", branch="z9hG4bK", call_id="b@x"), PHONE, 0)
    assert len(of(first, RequestReceived)) == len(of(second, RequestReceived)) == 1
    again = layer.receive_request(pyvoip("OPTIONS", branch="z9hG4bK", call_id="a@x"), PHONE, 0)
    assert again == []  # a true retransmission is still absorbed (Trying)


def test_rfc2543_invite_without_branch_acked_by_2543_rules() -> None:
    layer = TransactionLayer()
    text = pyvoip("INVITE").to_bytes().replace(f";branch={PYVOIP_BRANCH}".encode(), b"")
    req = parse_message(text)
    assert isinstance(req, Request)
    tx, got = new_invite(layer, req)
    layer.send_response(tx, make_response(got, 404, to_tag="t"), 0.0)
    ack = parse_message(pyvoip("ACK", to="<sip:2000@127.0.0.1>;tag=t").to_bytes()
                        .replace(f";branch={PYVOIP_BRANCH}".encode(), b""))
    assert isinstance(ack, Request)
    layer.receive_request(ack, PHONE, 0.1)
    assert layer.state(tx) is State.CONFIRMED


def test_cancel_answered_200_and_reported_then_tu_sends_487() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    layer.send_response(tx, make_response(req, 180, to_tag="srv1"), 0.1)
    cancel = build_cancel(pyvoip("INVITE"))
    out = layer.receive_request(cancel, PHONE, 0.5)
    assert sends(out) == [200]
    ok = of(out, Send)[0].message  # type: ignore[union-attr]
    assert header_tag(ok.headers.get("To") or "") == "srv1"  # §9.2: same To tag
    (reported,) = of(out, CancelReceived)
    assert isinstance(reported, CancelReceived) and reported.invite_tx == tx
    assert sends(layer.send_response(tx, make_response(req, 487, to_tag="srv1"), 0.6)) == [487]
    assert sends(layer.receive_request(cancel, PHONE, 0.7)) == [200]  # CANCEL retransmission


def test_cancel_after_final_answer_gets_200_but_no_cancel_event() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    layer.send_response(tx, make_response(req, 200, to_tag="srv1"), 0.1)
    out = layer.receive_request(build_cancel(pyvoip("INVITE")), PHONE, 0.5)
    assert sends(out) == [200] and not of(out, CancelReceived)


def test_cancel_matching_nothing_gets_481() -> None:
    layer = TransactionLayer()
    out = layer.receive_request(build_cancel(pyvoip("INVITE")), PHONE, 0.0)
    assert sends(out) == [481] and not of(out, CancelReceived) and not of(out, RequestReceived)


def test_tcp_has_no_retransmissions_and_zero_length_timers() -> None:
    tcp = Peer("tcp", "127.0.0.1", 40000)
    layer = TransactionLayer()
    tx, req = new_invite(layer, pyvoip("INVITE"), tcp)
    layer.send_response(tx, make_response(req, 486, to_tag="x"), 0.0)
    seen = run(layer, 40.0)
    assert not [o for _, o in seen if isinstance(o, Send)]
    assert (32.0, TimedOut(tx, "INVITE")) in seen  # Timer H still runs on TCP
    opt = of(layer.receive_request(pyvoip("OPTIONS"), tcp, 50.0), RequestReceived)[0]
    assert isinstance(opt, RequestReceived)
    out = layer.send_response(opt.server_tx, make_response(opt.request, 200), 50.0)
    assert sends(out) == [200] and out[-1] == TransactionTerminated(opt.server_tx)  # J = 0


def test_ack_in_tcp_completed_terminates_at_once() -> None:
    tcp = Peer("tcp", "127.0.0.1", 40000)
    layer = TransactionLayer()
    tx, req = new_invite(layer, pyvoip("INVITE"), tcp)
    layer.send_response(tx, make_response(req, 603, to_tag="x"), 0.0)
    assert layer.receive_request(pyvoip("ACK"), tcp, 0.1) == [TransactionTerminated(tx)]


def test_response_goes_to_source_with_received_and_rport() -> None:
    """§18.2.2 + RFC 3581; never to a host taken from the Via (RFC 4475 bcast)."""
    layer = TransactionLayer()
    natted = Peer("udp", "198.51.100.7", 34567)
    req = pyvoip("OPTIONS", via="255.255.255.255:5060;rport")
    (got,) = of(layer.receive_request(req, natted, 0.0), RequestReceived)
    assert isinstance(got, RequestReceived)
    top = got.request.headers.values("Via")[0]
    assert top == ("SIP/2.0/UDP 255.255.255.255:5060;rport=34567;branch=" + PYVOIP_BRANCH
                   + ";received=198.51.100.7")
    (sent,) = of(layer.send_response(got.server_tx, make_response(got.request, 200), 0.1), Send)
    assert isinstance(sent, Send) and sent.peer == natted
    assert sent.message.headers.values("Via")[0] == top


def test_same_host_without_rport_leaves_via_alone() -> None:
    layer = TransactionLayer()
    (got,) = of(layer.receive_request(pyvoip("OPTIONS"), PHONE, 0.0), RequestReceived)
    assert isinstance(got, RequestReceived)
    assert got.request.headers.get("Via") == f"SIP/2.0/UDP 127.0.0.1:5061;branch={PYVOIP_BRANCH}"


def test_stray_ack_goes_to_the_tu_without_transaction() -> None:
    layer = TransactionLayer()
    ack = pyvoip("ACK", to="<sip:2000@127.0.0.1>;tag=x")
    out = layer.receive_request(ack, PHONE, 0.0)
    assert len(out) == 1 and isinstance(out[0], RequestReceived) and out[0].server_tx == ""


def test_bad_via_gets_stateless_400_to_source() -> None:
    layer = TransactionLayer()
    req = pyvoip("OPTIONS")
    req.headers.set("Via", "garbage")
    out = layer.receive_request(req, PHONE, 0.0)
    assert sends(out) == [400] and out[0] == Send(out[0].message, PHONE)  # type: ignore[union-attr]


def test_tu_errors_are_our_bugs() -> None:
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    layer.send_response(tx, make_response(req, 486, to_tag="x"), 0.0)
    with pytest.raises(TransactionStateError):
        layer.send_response(tx, make_response(req, 200, to_tag="x"), 0.1)
    with pytest.raises(TransactionStateError):
        layer.send_response("s999", make_response(req, 200), 0.1)


def test_make_response_copies_headers_and_adds_tag_but_not_on_100() -> None:
    req = pyvoip("INVITE", extra="Timestamp: 54\r\nRecord-Route: <sip:p1;lr>\r\n")
    trying = make_response(req, 100, to_tag="abc")
    assert trying.reason == "Trying" and trying.headers.get("To") == "<sip:2000@127.0.0.1>"
    assert trying.headers.get("Timestamp") == "54"
    busy = make_response(req, 486, to_tag="abc", headers=[("Retry-After", "10")])
    assert busy.reason == "Busy Here"
    assert [n for n, _ in busy.headers] == ["Via", "From", "To", "Call-ID", "CSeq", "Retry-After"]
    assert busy.headers.get("To") == "<sip:2000@127.0.0.1>;tag=abc"
    tagged = make_response(pyvoip("BYE", to="<sip:2000@127.0.0.1>;tag=keep"), 200, to_tag="new")
    assert tagged.headers.get("To") == "<sip:2000@127.0.0.1>;tag=keep"
    assert make_response(req, 499).reason == "Bad Request"  # class default
    assert make_response(req, 481).reason == "Call/Transaction Does Not Exist"


def test_build_cancel_follows_rfc3261_9_1() -> None:
    inv = pyvoip("INVITE", extra="Route: <sip:proxy;lr>\r\n")
    inv.headers.add("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsecond")
    cancel = build_cancel(inv)
    assert cancel.method == "CANCEL" and cancel.uri == inv.uri
    assert cancel.headers.get_all("Via") == [f"SIP/2.0/UDP 127.0.0.1:5061;branch={PYVOIP_BRANCH}"]
    assert cancel.headers.get("CSeq") == "1 CANCEL" and cancel.headers.get("Route") == "<sip:proxy;lr>"
    assert cancel.headers.get("To") == inv.headers.get("To")


def test_captured_pyvoip_invite_and_ack_for_2xx() -> None:
    """tests/unit/sip/captures: pyVoIP's INVITE, then its ACK with a new random To tag."""
    from pathlib import Path

    captures = Path(__file__).parent / "captures"
    invite = parse_message((captures / "pyvoip_invite.sip").read_bytes())
    ack = parse_message((captures / "pyvoip_ack.sip").read_bytes())
    assert isinstance(invite, Request) and isinstance(ack, Request)
    layer = TransactionLayer()
    tx, req = new_invite(layer, invite)
    layer.send_response(tx, make_response(req, 180, to_tag="pbx9"), 0.1)
    layer.send_response(tx, make_response(req, 200, to_tag="pbx9"), 1.1)
    assert header_tag(ack.headers.get("To") or "") != "pbx9"
    assert layer.receive_request(ack, PHONE, 1.3) == [AckReceived(tx, ack)]
    assert [o for o in layer.handle_timer(2.0) if isinstance(o, Send)] == []


def test_awaiting_final_and_server_transaction_count() -> None:
    """What the TU's guard asks after a failure, and what the leak tests count."""
    layer = TransactionLayer()
    tx, req = new_invite(layer)
    (reg,) = of(layer.receive_request(pyvoip("REGISTER"), PHONE, 0.0), RequestReceived)
    assert isinstance(reg, RequestReceived)
    assert layer.server_transactions() == 2
    assert layer.awaiting_final(tx) and layer.awaiting_final(reg.server_tx)
    layer.send_response(tx, make_response(req, 180, to_tag="t"), 0.1)
    assert layer.awaiting_final(tx)  # a provisional response is no answer
    layer.send_response(tx, make_response(req, 500, to_tag="t"), 0.2)
    layer.send_response(reg.server_tx, make_response(reg.request, 200, to_tag="t"), 0.2)
    assert not layer.awaiting_final(tx) and not layer.awaiting_final(reg.server_tx)
    assert not layer.awaiting_final("nonexistent") and not layer.awaiting_final("")
    layer.receive_request(pyvoip("ACK", to="<sip:2000@127.0.0.1>;tag=t"), PHONE, 0.3)
    run(layer, 100.0)
    assert layer.server_transactions() == 0
