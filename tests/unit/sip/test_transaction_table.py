"""STYLE.md rule 3: walk every (state, input) pair of every transaction state machine.

EXPECTED is transcribed independently from RFC 3261 figures 5-8 as amended by RFC 6026
figures 5 and 7 (UDP): the next state and the kinds of output.  Pairs not listed: a network
input is absorbed (no output, same state); a TU or timer input is our bug and raises.
"""

from __future__ import annotations

import pytest

from pbxcore.sip.build import make_response
from pbxcore.sip.message import Headers, Request
from pbxcore.sip.peer import Peer
from pbxcore.sip.transaction import (
    INITIAL,
    NETWORK_INPUTS,
    TABLES,
    Input,
    Kind,
    State,
    TransactionLayer,
    TransactionStateError,
)

S, I = State, Input  # noqa: E741
SEND, TU, ACK, TIMEOUT, END = "Send", "ResponseReceived", "AckReceived", "TimedOut", "TransactionTerminated"

EXPECTED: dict[Kind, dict[tuple[State, Input], tuple[State, tuple[str, ...]]]] = {
    Kind.INVITE_CLIENT: {
        (S.CALLING, I.A): (S.CALLING, (SEND,)),
        (S.CALLING, I.B): (S.TERMINATED, (TIMEOUT, END)),
        (S.CALLING, I.R_1XX): (S.PROCEEDING, (TU,)),
        (S.CALLING, I.R_2XX): (S.ACCEPTED, (TU,)),
        (S.CALLING, I.R_FINAL): (S.COMPLETED, (SEND, TU)),  # the ACK goes out before the TU re-sends (407)
        (S.PROCEEDING, I.R_1XX): (S.PROCEEDING, (TU,)),
        (S.PROCEEDING, I.R_2XX): (S.ACCEPTED, (TU,)),
        (S.PROCEEDING, I.R_FINAL): (S.COMPLETED, (SEND, TU)),
        (S.COMPLETED, I.R_FINAL): (S.COMPLETED, (SEND,)),
        (S.COMPLETED, I.D): (S.TERMINATED, (END,)),
        (S.ACCEPTED, I.R_2XX): (S.ACCEPTED, (TU,)),
        (S.ACCEPTED, I.M): (S.TERMINATED, (END,)),
    },
    Kind.NON_INVITE_CLIENT: {
        (S.TRYING, I.E): (S.TRYING, (SEND,)),
        (S.TRYING, I.F): (S.TERMINATED, (TIMEOUT, END)),
        (S.TRYING, I.R_1XX): (S.PROCEEDING, (TU,)),
        (S.TRYING, I.R_2XX): (S.COMPLETED, (TU,)),
        (S.TRYING, I.R_FINAL): (S.COMPLETED, (TU,)),
        (S.PROCEEDING, I.E): (S.PROCEEDING, (SEND,)),
        (S.PROCEEDING, I.F): (S.TERMINATED, (TIMEOUT, END)),
        (S.PROCEEDING, I.R_1XX): (S.PROCEEDING, (TU,)),
        (S.PROCEEDING, I.R_2XX): (S.COMPLETED, (TU,)),
        (S.PROCEEDING, I.R_FINAL): (S.COMPLETED, (TU,)),
        (S.COMPLETED, I.K): (S.TERMINATED, (END,)),
    },
    Kind.INVITE_SERVER: {
        (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, (SEND,)),
        (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (SEND,)),
        (S.PROCEEDING, I.TU_2XX): (S.ACCEPTED, (SEND,)),
        (S.PROCEEDING, I.TU_FINAL): (S.COMPLETED, (SEND,)),
        (S.COMPLETED, I.REQUEST): (S.COMPLETED, (SEND,)),
        (S.COMPLETED, I.G): (S.COMPLETED, (SEND,)),
        (S.COMPLETED, I.H): (S.TERMINATED, (TIMEOUT, END)),
        (S.COMPLETED, I.ACK): (S.CONFIRMED, ()),
        (S.CONFIRMED, I.I): (S.TERMINATED, (END,)),
        (S.ACCEPTED, I.REQUEST): (S.ACCEPTED, (SEND,)),
        (S.ACCEPTED, I.ACK): (S.ACCEPTED, (ACK,)),
        (S.ACCEPTED, I.TU_2XX): (S.ACCEPTED, (SEND,)),
        (S.ACCEPTED, I.G): (S.ACCEPTED, (SEND,)),
        (S.ACCEPTED, I.L): (S.TERMINATED, (TIMEOUT, END)),
    },
    Kind.NON_INVITE_SERVER: {
        (S.TRYING, I.TU_1XX): (S.PROCEEDING, (SEND,)),
        (S.TRYING, I.TU_2XX): (S.COMPLETED, (SEND,)),
        (S.TRYING, I.TU_FINAL): (S.COMPLETED, (SEND,)),
        (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, (SEND,)),
        (S.PROCEEDING, I.TU_1XX): (S.PROCEEDING, (SEND,)),
        (S.PROCEEDING, I.TU_2XX): (S.COMPLETED, (SEND,)),
        (S.PROCEEDING, I.TU_FINAL): (S.COMPLETED, (SEND,)),
        (S.COMPLETED, I.REQUEST): (S.COMPLETED, (SEND,)),
        (S.COMPLETED, I.J): (S.TERMINATED, (END,)),
    },
}

STATES = {
    Kind.INVITE_CLIENT: [S.CALLING, S.PROCEEDING, S.COMPLETED, S.ACCEPTED],
    Kind.NON_INVITE_CLIENT: [S.TRYING, S.PROCEEDING, S.COMPLETED],
    Kind.INVITE_SERVER: [S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.ACCEPTED],
    Kind.NON_INVITE_SERVER: [S.TRYING, S.PROCEEDING, S.COMPLETED],
}
STATUS = {I.TU_1XX: 180, I.TU_2XX: 200, I.TU_FINAL: 486, I.R_1XX: 180, I.R_2XX: 200, I.R_FINAL: 486}
PAIRS = [(k, s, i) for k in Kind for s in STATES[k] for i in Input]


def _request(method: str) -> Request:
    h = Headers()
    h.add("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKtable")
    for name, value in (("From", "<sip:a@x>;tag=1"), ("To", "<sip:b@x>"), ("Call-ID", "t@x"),
                        ("CSeq", f"1 {method}")):
        h.add(name, value)
    return Request(method, "sip:b@x", h)


def test_tables_are_the_rfc_tables() -> None:
    assert {k: {p: row[1] for p, row in t.items()} for k, t in TABLES.items()} == {
        k: {p: nxt for p, (nxt, _) in t.items()} for k, t in EXPECTED.items()}
    assert [INITIAL[k][1] for k in Kind] == [S.CALLING, S.TRYING, S.PROCEEDING, S.TRYING]


@pytest.mark.parametrize(("kind", "state", "inp"), PAIRS,
                         ids=[f"{k.value}-{s.value}-{i.value}" for k, s, i in PAIRS])
def test_every_state_input_pair(kind: Kind, state: State, inp: Input) -> None:
    layer = TransactionLayer()
    method = "INVITE" if kind in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER) else "OPTIONS"
    req = _request(method)
    tx = layer._create(kind, req, Peer("udp", "127.0.0.1", 5061), [], 0.0)
    tx.state = state
    tx.fired = layer.t1
    tx.current = req if kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT) else make_response(req, 180)
    msg = make_response(req, STATUS[inp], to_tag="t") if inp in STATUS else (
        _request("ACK") if inp is I.ACK else req)
    expected = EXPECTED[kind].get((state, inp))
    if expected is None:
        if inp in NETWORK_INPUTS:
            assert layer._step(tx, inp, 1.0, msg) == []
            assert tx.state is state
        else:
            with pytest.raises(TransactionStateError):
                layer._step(tx, inp, 1.0, msg)
        return
    out = layer._step(tx, inp, 1.0, msg)
    assert (tx.state, tuple(type(o).__name__ for o in out)) == expected
    assert (layer.state(tx.id) is S.TERMINATED) == (expected[0] is S.TERMINATED)
