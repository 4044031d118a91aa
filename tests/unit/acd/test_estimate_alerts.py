"""Wait estimates, announcements, supervisor alerts and the snapshot's figures."""

from __future__ import annotations

import pytest

from pbxcore.acd.model import Alert, Announce, Offer
from pbxcore.acd.model.estimate import PRIOR_TALK, TalkTime, estimated_wait, free_in, minutes
from pbxcore.acd.spec import AlertThresholds
from tests.unit.acd.helpers import model, of, run_until, spec


def test_estimate_formula() -> None:
    # Two agents, one free now, one free in 50 s; handle time 100 s.
    assert estimated_wait(1, 100.0, [50.0, 0.0]) == 0.0
    assert estimated_wait(2, 100.0, [50.0, 0.0]) == 50.0
    assert estimated_wait(3, 100.0, [50.0, 0.0]) == 100.0
    assert estimated_wait(4, 100.0, [50.0, 0.0]) == 150.0
    assert estimated_wait(5, 100.0, [50.0, 0.0]) == 200.0
    assert estimated_wait(1, 100.0, []) is None, "nobody serves: nothing promised"
    assert free_in(talk=90.0, wrapup=10.0, talked=30.0) == 70.0
    assert free_in(talk=90.0, wrapup=10.0, talked=300.0) == 10.0, "overrunning: wrap-up left"
    assert [minutes(s) for s in (0, 59, 60, 61, 150)] == [1, 1, 1, 2, 3]


def test_talk_time_average() -> None:
    t = TalkTime()
    assert t.mean == PRIOR_TALK
    t.add(60.0)
    assert t.mean == 60.0, "the first call replaces the prior"
    t.add(160.0)
    assert t.mean == pytest.approx(90.0)


def test_announcements_carry_position_and_a_position_aware_estimate() -> None:
    acd = model(spec(members=("1001", "1002"), announce_every=30, wrapup=10))
    for i in range(2):  # both agents busy from t=0, answered at t=0
        [o] = of(acd.join(f"busy{i}", "q", 0.0), Offer)
        acd.answered(o.offer_id, o.agents[0], 0.0)
    acd.join("c1", "q", 5.0)
    acd.join("c2", "q", 6.0)
    acd.join("c3", "q", 7.0, announce=False)
    ds = run_until(acd, 36.0)
    # A = 120 + 10; each agent talked 35/36 s: free in 120-35+10 = 95, 120-36+10 = 94.
    assert of(ds, Announce) == [Announce("c1", "q", 1, 95.0), Announce("c2", "q", 2, 94.0)]
    ds = run_until(acd, 65.0)
    assert [a.estimated_wait for a in of(ds, Announce)] == [65.0], "c1 again, 30 s later"
    more = of(run_until(acd, 66.0), Announce)
    assert [(a.call_id, a.position) for a in more] == [("c2", 2)]
    assert acd.estimate(acd._queues["q"], 3, 66.0) == 64.0 + 130.0, "position 3: next round"


def test_no_announcement_while_an_agent_rings_for_the_caller() -> None:
    acd = model(spec(members=("1001",), announce_every=10, ring_timeout=100))
    acd.join("c1", "q", 0.0)
    assert of(run_until(acd, 25.0), Announce) == []


def test_waiting_alert_once_per_crossing_with_hysteresis() -> None:
    acd = model(spec(members=("1001",), alert=AlertThresholds(waiting=5, clear_ratio=0.6)),
                login=False)
    alerts: list[Alert] = []
    for i in range(7):
        alerts += of(acd.join(f"c{i}", "q", float(i)), Alert)
    assert alerts == [Alert("q", "waiting", 5.0, 5.0, True)]
    assert acd.snapshot(7.0).queues[0].alerts == ("waiting",)
    for i, n_left in zip(range(4), (6, 5, 4, 3), strict=True):
        ds = acd.leave(f"c{i}", 10.0 + i, "abandon")
        assert of(ds, Alert) == [], f"{n_left} waiting: not below 5 * 0.6"
    ds = acd.leave("c4", 20.0, "abandon")
    assert of(ds, Alert) == [Alert("q", "waiting", 2.0, 5.0, False)]
    assert acd.snapshot(20.0).queues[0].alerts == ()
    ds = acd.join("x1", "q", 21.0) + acd.join("x2", "q", 22.0)
    assert of(ds, Alert) == []
    assert of(acd.join("x3", "q", 23.0), Alert) == [Alert("q", "waiting", 5.0, 5.0, True)]


def test_longest_wait_alert_is_raised_on_time_and_cleared_when_the_oldest_leaves() -> None:
    acd = model(spec(members=("1001",), alert=AlertThresholds(longest_wait=60)), login=False)
    acd.join("c1", "q", 0.0)
    acd.join("c2", "q", 50.0)
    assert acd.next_deadline() == 60.0
    ds = run_until(acd, 100.0)
    assert of(ds, Alert) == [Alert("q", "longest_wait", 60.0, 60.0, True)]
    ds = acd.leave("c1", 100.0, "abandon")
    assert of(ds, Alert) == [], "c2 has waited 50 s: not below 48"
    ds = acd.leave("c2", 101.0, "abandon")
    assert of(ds, Alert) == [Alert("q", "longest_wait", 0.0, 60.0, False)]


def test_service_level_both_definitions_and_the_daily_reset() -> None:
    acd = model(spec(members=("1001",), service_level=20), login=False)
    acd.join("fast", "q", 0.0)
    [o] = of(acd.login("1001", 10.0), Offer)
    acd.answered(o.offer_id, "1001", 10.0)
    acd.join("slow", "q", 10.0)
    acd.join("gone", "q", 11.0)
    acd.leave("gone", 12.0, "abandon")
    [o] = of(acd.call_ended("fast", 40.0, "caller"), Offer)
    acd.answered(o.offer_id, "1001", 40.0)  # waited 30 s
    q = acd.snapshot(40.0).queues[0]
    assert (q.answered, q.answered_in_sl, q.abandoned) == (2, 1, 1)
    assert q.service_level == 0.5
    assert q.service_level_offered == pytest.approx(1 / 3)
    assert acd.snapshot(40.0).agents[0].calls == 2
    acd.reset_counters()
    q = acd.snapshot(41.0).queues[0]
    assert (q.answered, q.abandoned, q.service_level, q.service_level_offered) == (0, 0, None,
                                                                                 None)
    assert acd.snapshot(41.0).agents[0].calls == 0


def test_snapshot_counts_agents_by_their_state_in_each_queue() -> None:
    acd = model(spec("a", members=("1001", "1002", "1003")), spec("b", members=("1001",)),
                login=False)
    acd.login("1001", 0.0)
    acd.pause("1001", 0.0, queue="a", reason="coaching")
    acd.login("1002", 0.0)
    snap = acd.snapshot(1.0)
    a, b = snap.queues
    assert (a.agents["paused"], a.agents["available"], a.agents["logged_out"]) == (1, 1, 1)
    assert b.agents["available"] == 1
    agent = snap.agents[0]
    assert (agent.state, agent.logged_in, agent.paused_in) == ("available", ("a", "b"), ("a",))


def test_longest_wait_alert_at_a_float_unfriendly_time_is_raised_once() -> None:
    acd = model(spec(members=("1001",), alert=AlertThresholds(longest_wait=0.1)), login=False)
    acd.join("c1", "q", 0.7)
    ds = acd.tick(0.7 + 0.1)
    assert [a.raised for a in of(ds, Alert)] == [True]
    assert acd.next_deadline() is None


def test_the_longest_wait_timer_is_scheduled_once_not_once_per_input() -> None:
    acd = model(spec(members=("1001",), alert=AlertThresholds(longest_wait=600)), login=False)
    acd.join("c1", "q", 0.0)
    for i in range(50):
        acd.join(f"x{i}", "q", 1.0 + i)
    assert len(acd._timers) == 1
