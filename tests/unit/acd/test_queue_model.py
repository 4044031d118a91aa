"""The queue model stepped through time: priority, wrap-up, pauses, overflow, exits, reloads."""

from __future__ import annotations

import pytest

from pbxcore.acd.model import AcdError, CancelOffer, Connect, Leave, Offer
from pbxcore.acd.spec import OverflowRule
from tests.unit.acd.helpers import model, of, offered, rows, run_until, spec


def test_vip_is_served_before_earlier_normal_callers_fifo_within_a_priority() -> None:
    acd = model(spec(members=("1001",)))
    first = of(acd.join("busy", "q", 0.0), Offer)[0]
    acd.answered(first.offer_id, "1001", 0.0)
    for i, (call, prio) in enumerate([("n1", 0), ("n2", 0), ("v1", 5), ("n3", 0), ("v2", 5)]):
        acd.join(call, "q", 1.0 + i, priority=prio)
    served = []
    t = 10.0
    call = "busy"
    for _ in range(5):
        [offer] = of(acd.call_ended(call, t, "agent"), Offer)
        acd.answered(offer.offer_id, "1001", t + 1)
        call, t = offer.call_id, t + 10
        served.append(call)
    assert served == ["v1", "v2", "n1", "n2", "n3"]


def test_positions_count_priority_then_arrival() -> None:
    acd = model(spec(members=("1001",)), login=False)
    assert rows(acd.join("n1", "q", 0.0))[0][3] == ("", "", "1")
    assert rows(acd.join("n2", "q", 1.0))[0][3][2] == "2"
    assert rows(acd.join("v1", "q", 2.0, priority=1))[0][3][2] == "1"


def test_wrapup_is_respected_then_the_agent_is_offered_at_once() -> None:
    acd = model(spec(members=("1001",), wrapup=30))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    acd.answered(o.offer_id, "1001", 1.0)
    acd.join("c2", "q", 2.0)
    assert offered(acd.call_ended("c1", 60.0, "caller")) == []
    assert acd.snapshot(60.0).agents[0].state == "wrapup"
    assert acd.next_deadline() == 90.0
    assert offered(run_until(acd, 89.9)) == []
    assert offered(acd.tick(90.0)) == [("c2", ("1001",))]


def test_wrapup_zero_makes_the_agent_available_at_once() -> None:
    acd = model(spec(members=("1001",)))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    acd.answered(o.offer_id, "1001", 1.0)
    acd.join("c2", "q", 2.0)
    assert offered(acd.call_ended("c1", 3.0, "agent")) == [("c2", ("1001",))]


def test_paused_agents_are_skipped_and_unpause_offers_at_once() -> None:
    acd = model(spec(members=("1001", "1002"), strategy="linear"))
    acd.pause("1001", 0.0, reason="lunch")
    acd.pause("1002", 0.0, queue="q", reason="training")
    assert offered(acd.join("c1", "q", 1.0)) == []
    ds = acd.unpause("1002", 2.0)
    assert offered(ds) == [("c1", ("1002",))]
    assert ("UNPAUSE", None, "1002", ("",)) in rows(ds)


def test_autopause_after_n_no_answers_in_a_row() -> None:
    acd = model(spec(members=("1001", "1002"), strategy="linear", autopause_after=2,
                     ring_timeout=10, retry=5))
    acd.pause("1002", 0.0, reason="x")
    assert offered(acd.join("c1", "q", 0.0)) == [("c1", ("1001",))]
    ds = acd.tick(10.0)  # rings out
    assert of(ds, CancelOffer)[0].reason == "ring_timeout"
    assert rows(ds) == [("RINGNOANSWER", "c1", "1001", ("10000",))]
    assert offered(run_until(acd, 14.9)) == [], "retry: the caller waits 5 s"
    assert offered(acd.tick(15.0)) == [("c1", ("1001",))]
    ds = acd.tick(25.0)
    assert ("PAUSE", None, "1001", ("no-answer",)) in rows(ds)
    a = acd.snapshot(25.0).agents[0]
    assert (a.state, a.reason) == ("paused", "no-answer")
    ds = acd.unpause("1002", 26.0)
    assert offered(ds) == [], "the caller is still in its retry wait"
    assert offered(acd.tick(30.0)) == [("c1", ("1002",))]


def test_answering_resets_the_no_answer_count() -> None:
    acd = model(spec(members=("1001",), autopause_after=2, ring_timeout=10))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    [o] = of(acd.no_answer(o.offer_id, "1001", 3.0, rejected=True), Offer)  # retry 0: again
    acd.answered(o.offer_id, "1001", 4.0)
    acd.call_ended("c1", 5.0, "caller")
    [o] = of(acd.join("c2", "q", 6.0), Offer)
    acd.no_answer(o.offer_id, "1001", 7.0)
    assert acd.snapshot(7.0).agents[0].state == "ringing", "one no-answer in a row, not two"
    [o] = of(acd.tick(7.0), Offer) or [max(acd._offers.values(), key=lambda x: x.offer_id)]
    acd.no_answer(o.offer_id, "1001", 8.0)
    assert acd.snapshot(8.0).agents[0].state == "paused"


def test_overflow_offers_the_next_tier_after_s_and_the_caller_keeps_its_place() -> None:
    rules = (OverflowRule(after=30, tier=2),)
    acd = model(spec(members=("1001:1", "1002:2"), overflow=rules))
    [o] = of(acd.join("busy", "q", 0.0), Offer)
    assert o.agents == ("1001",), "tier 2 is not offered a fresh caller"
    acd.answered(o.offer_id, "1001", 0.0)
    acd.join("c1", "q", 1.0)
    acd.join("c2", "q", 20.0)
    assert offered(run_until(acd, 30.9)) == []
    assert acd.next_deadline() == 31.0
    ds = acd.tick(31.0)
    assert offered(ds) == [("c1", ("1002",))], "c1 (waited 30 s) reaches tier 2, c2 not yet"
    snap = acd.snapshot(31.0).queues[0]
    assert snap.waiting == 2
    assert acd._queues["q"].line.position(acd._callers["c1"]) == 1, "c1 keeps its place"


def test_overflow_caller_is_offered_to_tier_one_first_when_one_frees() -> None:
    rules = (OverflowRule(after=10, tier=2),)
    acd = model(spec(members=("1001:1", "1002:2"), overflow=rules))
    [o] = of(acd.join("busy", "q", 0.0), Offer)
    acd.answered(o.offer_id, "1001", 0.0)
    acd.pause("1002", 0.0)
    acd.join("c1", "q", 1.0)
    run_until(acd, 20.0)
    acd.unpause("1002", 20.0)  # offered at once: level 2 now
    assert acd.snapshot(20.0).agents[1].state == "ringing"


def test_exit_key_leaves_with_the_key() -> None:
    acd = model(spec(members=("1001",)), login=False)
    acd.join("c1", "q", 0.0)
    ds = acd.leave("c1", 12.0, "exit_key", key="0")
    assert of(ds, Leave) == [Leave("c1", "q", "exit_key", 12.0, 1)]
    assert rows(ds) == [("EXITWITHKEY", "c1", None, ("0", "1", "1", "12"))]
    assert acd.leave("c1", 13.0, "abandon") == [], "already gone"


def test_timeout_is_the_shorter_of_max_wait_and_the_action_timeout() -> None:
    acd = model(spec(members=("1001",), max_wait=60, ring_timeout=100))
    acd.join("c1", "q", 0.0, timeout=20)
    acd.join("c2", "q", 0.0)
    ds = run_until(acd, 20.0)
    assert [(d.call_id, d.result, d.wait) for d in of(ds, Leave)] == [("c1", "timeout", 20.0)]
    assert of(ds, CancelOffer) == [CancelOffer(1, ("1001",), "caller_left")]
    assert [r[0] for r in rows(ds)] == ["RINGCANCELED", "EXITWITHTIMEOUT"]
    ds = run_until(acd, 60.0)
    assert [(d.call_id, d.result) for d in of(ds, Leave)] == [("c2", "timeout")]
    assert ("EXITWITHTIMEOUT", "c2", None, ("1", "2", "60")) in rows(ds)


def test_full_refuses_the_join() -> None:
    acd = model(spec(members=("1001",), max_len=1), login=False)
    acd.join("c1", "q", 0.0)
    ds = acd.join("c2", "q", 1.0)
    assert of(ds, Leave) == [Leave("c2", "q", "full", 0.0, 2)]
    assert rows(ds) == [("FULL", "c2", None, ("2", "2", "0"))]


def test_empty_leave_policy() -> None:
    acd = model(spec(members=("1001", "1002"), empty="leave"), login=False)
    ds = acd.join("c1", "q", 0.0)
    assert of(ds, Leave) == [Leave("c1", "q", "empty", 0.0, 1)]
    assert rows(ds) == [("EXITEMPTY", "c1", None, ("1", "1", "0"))]
    acd.login("1001", 1.0)
    acd.pause("1001", 1.0, reason="lunch")
    assert of(acd.join("c2", "q", 2.0), Leave) == [], "a paused agent counts as logged in"
    acd.login("1002", 2.0)
    acd.registered("1002", 2.0, False)
    ds = acd.logout("1001", 3.0)
    assert [(d.call_id, d.result) for d in of(ds, Leave)] == [("c2", "empty")], \
        "an unregistered agent does not count"


def test_empty_join_policy_keeps_callers_waiting() -> None:
    acd = model(spec(members=("1001",)), login=False)
    assert of(acd.join("c1", "q", 0.0), Leave) == []
    assert offered(acd.login("1001", 5.0)) == [("c1", ("1001",))]


def test_an_agent_in_two_queues_gets_one_call_the_best_caller_across_queues() -> None:
    acd = model(spec("a", members=("1001",)), spec("b", members=("1001",)), login=False)
    acd.join("a1", "a", 0.0)
    acd.join("b1", "b", 1.0)
    acd.join("b2", "b", 2.0, priority=3)
    ds = acd.login("1001", 5.0)
    assert offered(ds) == [("b2", ("1001",))]
    acd.answered(of(ds, Offer)[0].offer_id, "1001", 6.0)
    assert offered(acd.call_ended("b2", 7.0, "caller")) == [("a1", ("1001",))]


def test_a_late_answer_after_the_caller_left_is_withdrawn() -> None:
    acd = model(spec(members=("1001",)))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    ds = acd.leave("c1", 1.0, "abandon")
    assert rows(ds) == [("RINGCANCELED", "c1", "1001", ("1000",)), ("ABANDON", "c1", None,
                                                                     ("1", "1", "1"))]
    assert of(ds, Leave) == []
    assert acd.answered(o.offer_id, "1001", 1.5) == [CancelOffer(o.offer_id, ("1001",),
                                                                 "withdrawn")]
    assert acd.snapshot(2.0).agents[0].state == "available"
    assert acd.snapshot(2.0).queues[0].abandoned == 1


def test_ringall_keeps_ringing_the_others_when_one_rejects() -> None:
    acd = model(spec(members=("1001", "1002"), strategy="ringall", retry=3))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    assert offered(acd.no_answer(o.offer_id, "1001", 1.0, rejected=True)) == []
    assert acd.snapshot(1.0).agents[1].state == "ringing"
    acd.offer_failed(o.offer_id, "1002", 2.0)
    assert acd.next_deadline() == 5.0, "retry after the last leg is gone"
    assert offered(acd.tick(5.0)) == [("c1", ("1001", "1002"))]


def test_reconfigure_with_callers_waiting() -> None:
    acd = model(spec(members=("1001",)))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    acd.answered(o.offer_id, "1001", 1.0)
    acd.join("c2", "q", 2.0)
    acd.join("c3", "q", 3.0)
    ds = acd.reconfigure([spec(members=("1002",)), spec("new", members=("1001",))], 10.0)
    assert ("REMOVEMEMBER", None, "1001", ("",)) in rows(ds)
    assert ("ADDMEMBER", None, "1002", ("1",)) in rows(ds)
    assert offered(ds) == [], "1002 is added logged out"
    snap = acd.snapshot(10.0)
    assert snap.queues[0].waiting == 2 and snap.agents[0].state == "talking"
    assert snap.agents[0].queues == ("new",) and snap.agents[0].logged_in == ("new",), \
        "1001 moved to the new queue keeps its login"
    assert offered(acd.login("1002", 11.0)) == [("c2", ("1002",))]
    # 1001 finishes its call, then serves its new queue only.
    acd.join("n1", "new", 12.0)
    assert offered(acd.call_ended("c1", 13.0, "caller")) == [("n1", ("1001",))]
    ds = acd.reconfigure([spec("new", members=("1001",))], 14.0)
    assert [(d.call_id, d.result) for d in of(ds, Leave)] == [("c2", "empty"), ("c3", "empty")]
    assert of(ds, CancelOffer) == [CancelOffer(2, ("1002",), "caller_left")]


def test_reconfigure_added_member_follows_the_agents_login() -> None:
    acd = model(spec("a", members=("1001",)))
    ds = acd.reconfigure([spec("a", members=("1001",)), spec("b", members=("1001",))], 1.0)
    assert acd.snapshot(1.0).agents[0].logged_in == ("a", "b")
    assert [r[0] for r in rows(ds)] == ["ADDMEMBER"]


def test_transfer_ends_the_agents_part() -> None:
    acd = model(spec(members=("1001",), wrapup=5))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    acd.answered(o.offer_id, "1001", 4.0)
    ds = acd.transfer("c1", 10.0, "2000", "default")
    assert rows(ds) == [("TRANSFER", "c1", "1001", ("2000", "default", "4", "6", "1"))]
    assert acd.snapshot(10.0).agents[0].state == "wrapup"


def test_connect_carries_the_script_figures() -> None:
    acd = model(spec(members=("1001",)), login=False)
    acd.join("c1", "q", 0.0)
    [o] = of(acd.login("1001", 7.0), Offer)
    ds = acd.answered(o.offer_id, "1001", 9.0, leg_id="leg-7")
    assert of(ds, Connect) == [Connect(o.offer_id, "c1", "q", "1001", 9.0, 1, 2.0)]
    assert ("CONNECT", "c1", "1001", ("9", "leg-7", "2")) in rows(ds)


def test_shutdown_journals_every_waiting_and_connected_call() -> None:
    acd = model(spec(members=("1001", "1002"), strategy="linear"))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    acd.answered(o.offer_id, "1001", 2.0)
    acd.join("c2", "q", 3.0)  # rings 1002
    acd.join("c3", "q", 4.0)
    ds = acd.shutdown(10.0)
    assert rows(ds) == [
        ("RINGCANCELED", "c2", "1002", ("7000",)),
        ("SHUTDOWN", "c2", None, ("1", "1", "7")),
        ("SHUTDOWN", "c3", None, ("1", "2", "6")),
        ("SHUTDOWN", "c1", "1001", ("2", "8", "1")),
    ]
    assert of(ds, Leave) == []
    assert acd.next_deadline() is None
    assert [a.state for a in acd.snapshot(10.0).agents] == ["available", "available"]


def test_overflow_timer_at_a_float_unfriendly_time_ends() -> None:
    # 0.7 + 0.1 - 0.7 < 0.1 in floats: the level must still rise at the timer, once.
    acd = model(spec(members=("1001:1", "1002:2"), overflow=(OverflowRule(0.1, 2),)))
    acd.pause("1001", 0.0)
    acd.pause("1002", 0.0)
    acd.join("c1", "q", 0.7)
    assert acd.next_deadline() == 0.7 + 0.1
    acd.tick(0.7 + 0.1)
    assert acd.next_deadline() is None
    assert acd._callers["c1"].level == 2


def test_stale_timers_of_answered_callers_are_compacted() -> None:
    acd = model(spec(members=("1001",), max_wait=3600, announce_every=600))
    for i in range(6000):  # a timeout an hour ahead stays behind for each answered caller
        [o] = of(acd.join(f"c{i}", "q", float(i)), Offer)
        acd.answered(o.offer_id, "1001", float(i))
        acd.call_ended(f"c{i}", i + 0.5, "caller")
        acd.tick(i + 0.5)
    assert len(acd._timers) <= 4097
    assert acd.next_deadline() is None


def test_a_direct_call_is_remembered_for_an_extension_that_becomes_a_member() -> None:
    acd = model(spec(members=("1001",)))
    acd.direct_call("1002", 0.0, True)
    acd.reconfigure([spec(members=("1001", "1002"))], 1.0)
    acd.login("1002", 1.0)
    acd.pause("1001", 1.0)
    assert offered(acd.join("c1", "q", 2.0)) == []
    assert offered(acd.direct_call("1002", 3.0, False)) == [("c1", ("1002",))]


def test_pausing_an_agent_logged_out_of_every_queue_is_an_error() -> None:
    acd = model(spec(members=("1001",)))
    [o] = of(acd.join("c1", "q", 0.0), Offer)
    acd.answered(o.offer_id, "1001", 1.0)
    acd.logout("1001", 2.0)  # talking: logged out after the call
    assert acd.snapshot(2.0).agents[0].state == "talking"
    with pytest.raises(AcdError):
        acd.pause("1001", 3.0, reason="x")
    acd.call_ended("c1", 4.0, "caller")
    assert acd.snapshot(4.0).agents[0].state == "logged_out"


def test_reconfigure_follows_the_new_config_order() -> None:
    acd = model(spec("a"), spec("b"))
    acd.reconfigure([spec("c"), spec("b"), spec("a")], 1.0)
    assert [q.name for q in acd.snapshot(1.0).queues] == ["c", "b", "a"]
    assert acd.snapshot(1.0).agents[0].queues == ("c", "b", "a")
