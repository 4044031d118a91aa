"""Callbacks that keep the place (issue 11): the model's virtual caller."""

from __future__ import annotations

from pbxcore.acd.model import Connect, Decision, Leave, Offer
from tests.unit.acd.helpers import model, of, offered, rows, run_until, spec


def test_the_virtual_caller_keeps_the_callers_place_and_never_times_out() -> None:
    acd = model(spec(members=("1001",), max_wait=30.0), login=False)
    for i in (1, 2, 3):
        acd.join(f"c{i}", "q", float(i))
    ds = acd.request_callback("c2", 5.0, "cb1", "5550100")
    assert [(x.call_id, x.result) for x in of(ds, Leave)] == [("c2", "callback")]
    assert [r[:2] for r in rows(ds)] == [("CALLBACK", "c2"), ("CALLBACKREQUEST", "cb1")]
    assert rows(ds)[1][3] == ("5550100", "c2", "2")
    assert [c.call_id for c in acd._queues["q"].line] == ["c1", "cb1", "c3"]
    ds = run_until(acd, 40.0)  # max_wait: the live callers time out, the callback stays
    assert sorted(x.call_id for x in of(ds, Leave)) == ["c1", "c3"]
    assert [c.call_id for c in acd._queues["q"].line] == ["cb1"]
    assert acd.callbacks() == [("q", "cb1", "5550100", 0)]
    assert acd.snapshot(40.0).queues[0].waiting == 1


def test_offered_in_its_turn_then_attempt_connect_and_complete() -> None:
    acd = model(spec(members=("1001",)), login=False)
    acd.join("c1", "q", 0.0)
    acd.join("c2", "q", 1.0)
    acd.request_callback("c1", 2.0, "cb1", "1002")
    ds = acd.login("1001", 3.0)
    assert offered(ds) == [("cb1", ("1001",))]  # ahead of c2, who joined later
    oid = of(ds, Offer)[0].offer_id
    ds = acd.answered(oid, "1001", 4.0)
    assert [c.call_id for c in of(ds, Connect)] == ["cb1"]
    assert [r[0] for r in rows(ds)] == ["CALLBACKATTEMPT"]
    assert rows(ds)[0][2:] == ("1001", ("1002", "1", "1"))  # number, attempt, ring s
    assert acd.snapshot(4.0).queues[0].answered == 0  # not yet: the customer rings
    ds = acd.callback_connected("cb1", 9.0)
    assert rows(ds) == [("CALLBACKCONNECT", "cb1", "1001", ("1002", "1", "9"))]
    assert acd.snapshot(9.0).queues[0].answered == 1
    ds = acd.call_ended("cb1", 20.0, "agent")
    assert [r[0] for r in rows(ds)] == ["COMPLETEAGENT"]
    assert acd.callbacks() == []


def test_unanswered_goes_back_in_line_then_fails_after_the_retries() -> None:
    acd = model(spec(members=("1001",), callback_retries=2, callback_retry_delay=10.0))
    acd.join("c1", "q", 0.0)  # offered to 1001 at once; it does not answer
    off = next(iter(acd._offers.values()))
    acd.no_answer(off.offer_id, "1001", 1.0)
    acd.request_callback("c1", 2.0, "cb1", "5550100")
    now, attempts = 2.0, []
    ds: list[Decision] = []
    for _ in range(3):
        offers = of(acd.tick(now), Offer)
        while not offers:  # the back-off: nothing is offered before the deadline
            now = acd.next_deadline() or now
            offers = of(acd.tick(now), Offer)
        attempts.append(rows(acd.answered(offers[0].offer_id, "1001", now))[0][3][1])
        ds = acd.callback_unanswered("cb1", now, "busy")
        assert acd.agent_states()["1001"][0] == "available"  # no wrap-up after no talk
    assert attempts == ["1", "2", "3"]
    assert rows(ds) == [("CALLBACKFAILED", "cb1", "1001", ("5550100", "3", "busy"))]
    assert acd.callbacks() == [] and not acd._queues["q"].line


def test_back_off_delays() -> None:
    acd = model(spec(members=("1001",), callback_retries=3, callback_retry_delay=10.0))
    acd.join("c1", "q", 0.0, priority=0)
    off = next(iter(acd._offers.values()))
    acd.no_answer(off.offer_id, "1001", 0.0)
    acd.request_callback("c1", 0.0, "cb1", "5550100")
    ds = run_until(acd, 0.0)
    waits, now = [], 0.0
    for _ in range(3):
        offer = of(ds, Offer)[0] if of(ds, Offer) else None
        if offer is None:
            ds = run_until(acd, acd.next_deadline() or now)
            offer = of(ds, Offer)[0]
        acd.answered(offer.offer_id, "1001", now)
        acd.callback_unanswered("cb1", now, "noanswer")
        deadline = acd.next_deadline()
        assert deadline is not None
        waits.append(deadline - now)
        now = deadline
        ds = acd.tick(now)
    assert waits == [10.0, 20.0, 40.0]


def test_restored_callbacks_come_back_in_request_order_ahead_of_new_callers() -> None:
    acd = model(spec(members=("1001",)), login=False)
    acd.restore_callback("cb1", "q", 100.0, number="111", waited=50.0, attempts=1)
    acd.restore_callback("cb2", "q", 100.0, number="222", waited=20.0)
    acd.join("c9", "q", 100.0)
    assert [c.call_id for c in acd._queues["q"].line] == ["cb1", "cb2", "c9"]
    assert acd.snapshot(100.0).queues[0].longest_wait == 50.0
    assert acd.restore_callback("cb1", "q", 100.0, number="111") == []
    ds = acd.login("1001", 101.0)
    assert offered(ds) == [("cb1", ("1001",))]


def test_a_caller_not_waiting_gets_no_callback_and_cancel_removes_one() -> None:
    acd = model(spec(members=("1001",)), login=False)
    assert acd.request_callback("nobody", 0.0, "cb1", "1") == []
    acd.join("c1", "q", 0.0)
    acd.request_callback("c1", 1.0, "cb1", "5550100")
    ds = acd.cancel_callback("cb1", 2.0, "queue removed")
    assert rows(ds) == [("CALLBACKFAILED", "cb1", None, ("5550100", "0", "queue removed"))]
    assert not acd._queues["q"].line


def test_a_removed_queue_fails_its_callbacks_without_a_leave() -> None:
    acd = model(spec(members=("1001",)), spec("other", members=("1002",)), login=False)
    acd.join("c1", "q", 0.0)
    acd.request_callback("c1", 1.0, "cb1", "5550100")
    ds = acd.reconfigure([spec("other", members=("1002",))], 2.0)
    assert rows(ds)[0] == ("CALLBACKFAILED", "cb1", None, ("5550100", "0", "queue removed"))
    assert of(ds, Leave) == [] and acd.callbacks() == []
