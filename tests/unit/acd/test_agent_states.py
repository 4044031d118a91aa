"""The agent state machine: every (state, event) pair of the table, walked one by one."""

from __future__ import annotations

import itertools

import pytest

from pbxcore.acd.model import AGENT_EVENTS, TABLE, IllegalTransition, Offer
from pbxcore.acd.model.agents import SETTLE, Agent, Illegal, Membership
from pbxcore.acd.spec import AGENT_STATES
from tests.unit.acd.helpers import model, of, run_until, spec

PAIRS = list(itertools.product(AGENT_STATES, AGENT_EVENTS))


def test_the_table_defines_every_pair_and_nothing_else() -> None:
    assert set(TABLE) == set(PAIRS)


def agent_in(state: str) -> Agent:
    """An agent in `state` with memberships that agree with it: two queues, logged in to both
    unless logged_out, paused in both when paused, in one (q2) otherwise."""
    a = Agent("1001", state=state)  # type: ignore[arg-type]
    logged = state != "logged_out"
    a.memberships = {"q1": Membership(1, logged_in=logged), "q2": Membership(1, logged_in=logged)}
    if state == "paused":
        a.memberships["q1"].paused = a.memberships["q2"].paused = a.reason = "lunch"
    elif logged:
        a.memberships["q2"].paused = "lunch"
    return a


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_pair(state: str, event: str) -> None:
    a = agent_in(state)
    nxt = TABLE[state, event]  # type: ignore[index]
    if isinstance(nxt, Illegal):
        with pytest.raises(IllegalTransition):
            a.fire(event, 1.0)  # type: ignore[arg-type]
        assert a.state == state, "a refused event changes nothing"
        return
    got = a.fire(event, 1.0)  # type: ignore[arg-type]
    if nxt == SETTLE:
        # Idle state from the memberships: logged in and unpaused in q1 -> available, etc.
        expected = {"logged_out": "logged_out", "paused": "paused"}.get(state, "available")
        assert got == expected
    else:
        assert got == nxt
    if got != state:
        assert a.since == 1.0


def test_settle_derives_the_idle_state() -> None:
    a = Agent("1001", memberships={"q1": Membership(1), "q2": Membership(1)})
    a.settle(0.0)
    assert a.state == "logged_out"
    a.memberships["q1"].logged_in = True
    a.memberships["q1"].paused = "lunch"
    a.settle(1.0)
    assert (a.state, a.reason) == ("paused", "lunch")
    a.memberships["q2"].logged_in = True
    a.settle(2.0)
    assert a.state == "available", "unpaused in one queue is enough"


def test_pause_while_talking_takes_effect_after_the_call_and_wrapup() -> None:
    acd = model(spec(members=("1001",), wrapup=10))
    [offer] = of(acd.join("c1", "q", 0.0), Offer)
    acd.answered(offer.offer_id, "1001", 1.0)
    acd.pause("1001", 2.0, reason="lunch")
    states = [acd.snapshot(2.0).agents[0].state]
    acd.call_ended("c1", 5.0, "caller")
    states.append(acd.snapshot(5.0).agents[0].state)
    run_until(acd, 15.0)
    snap = acd.snapshot(15.0).agents[0]
    states.append(snap.state)
    assert states == ["talking", "wrapup", "paused"]
    assert snap.reason == "lunch" and snap.since == 15.0


def test_logout_of_a_logged_out_agent_is_an_error() -> None:
    acd = model(spec(members=("1001",)), login=False)
    with pytest.raises(IllegalTransition):
        acd.logout("1001", 0.0)
    with pytest.raises(IllegalTransition):
        acd.pause("1001", 0.0, reason="x")
