"""A model test of each strategy: which agent the next caller is offered to."""

from __future__ import annotations

import random

from pbxcore.acd.model import Acd, Offer
from tests.unit.acd.helpers import model, of, offered, run_until, spec

AGENTS = ("1001", "1002", "1003")


def serve(acd: Acd, call: str, now: float, talk: float = 1.0) -> str:
    """Join `call`, let the offered agent answer and hang up after `talk`; return the agent."""
    [offer] = of(acd.join(call, "q", now), Offer)
    agent = offer.agents[0]
    acd.answered(offer.offer_id, agent, now)
    acd.call_ended(call, now + talk, "caller")
    return agent


def test_ringall_rings_every_available_agent_and_cancels_the_others() -> None:
    acd = model(spec(members=AGENTS, strategy="ringall"))
    acd.pause("1002", 0.0, reason="lunch")
    [offer] = of(acd.join("c1", "q", 1.0), Offer)
    assert offer.agents == ("1001", "1003")
    ds = acd.answered(offer.offer_id, "1003", 2.0)
    cancels = [(d.agents, d.reason) for d in ds if type(d).__name__ == "CancelOffer"]
    assert cancels == [(("1001",), "answered_elsewhere")]
    assert acd.snapshot(2.0).agents[0].state == "available"


def test_longest_idle_picks_the_agent_idle_longest_since_its_last_call() -> None:
    acd = model(spec(members=AGENTS, strategy="longest-idle"))
    # All logged in at 0: ties go to config order.  Then each call ends later than the last.
    got = [serve(acd, f"c{i}", 10.0 * i) for i in range(4)]
    assert got == ["1001", "1002", "1003", "1001"]
    # 1002's call ended longest ago (at 11) once 1003 and 1001 took later calls.
    assert serve(acd, "c9", 100.0) == "1002"


def test_longest_idle_counts_login_time() -> None:
    acd = model(spec(members=AGENTS), login=False)
    acd.login("1003", 1.0)
    acd.login("1001", 2.0)
    assert serve(acd, "c1", 5.0) == "1003"


def test_round_robin_remembers_the_last_agent_offered() -> None:
    acd = model(spec(members=AGENTS, strategy="round-robin"))
    got = [serve(acd, f"c{i}", float(i)) for i in range(4)]
    assert got == ["1001", "1002", "1003", "1001"]
    acd.pause("1002", 10.0, reason="x")
    assert serve(acd, "c5", 11.0) == "1003", "skips the paused one, keeps the rotation"


def test_fewest_calls_picks_the_agent_with_fewest_answered_calls_from_this_queue() -> None:
    acd = model(spec(members=AGENTS, strategy="fewest-calls"))
    assert [serve(acd, f"c{i}", float(i)) for i in range(3)] == ["1001", "1002", "1003"]
    acd.logout("1002", 5.0)
    acd.login("1002", 6.0)  # a new login starts a new count
    assert serve(acd, "c4", 7.0) == "1002"
    assert serve(acd, "c5", 8.0) == "1001", "all at one call again: config order breaks the tie"
    acd.reset_counters()  # midnight: every count starts again
    assert serve(acd, "c6", 9.0) == "1001"
    assert serve(acd, "c7", 10.0) == "1002"


def test_linear_always_starts_from_the_top() -> None:
    acd = model(spec(members=("1003", "1001", "1002"), strategy="linear"))
    assert [serve(acd, f"c{i}", float(i)) for i in range(3)] == ["1003", "1003", "1003"]
    acd.pause("1003", 9.0)
    assert serve(acd, "c9", 10.0) == "1001"


def test_random_draws_from_the_injected_rng() -> None:
    def picks(seed: int) -> list[str]:
        acd = Acd([spec(members=AGENTS, strategy="random")], 0.0, rng=random.Random(seed))
        for a in AGENTS:
            acd.login(a, 0.0)
        return [serve(acd, f"c{i}", float(i)) for i in range(30)]

    assert picks(7) == picks(7), "same seed, same choices"
    assert set(picks(7)) == set(AGENTS), "every agent gets calls"
    assert picks(7) != picks(8)


def test_tiers_without_overflow_prefer_the_lowest_tier_with_an_available_agent() -> None:
    acd = model(spec(members=("1002:2", "1001:1", "1003:3"), strategy="linear"))
    assert serve(acd, "c1", 0.0) == "1001"
    acd.pause("1001", 1.0)
    assert serve(acd, "c2", 2.0) == "1002"


def test_unregistered_and_direct_call_agents_are_not_offered() -> None:
    acd = model(spec(members=AGENTS, strategy="linear"))
    acd.registered("1001", 0.0, False)
    acd.direct_call("1002", 0.0, True)
    assert offered(acd.join("c1", "q", 1.0)) == [("c1", ("1003",))]
    acd.direct_call("1002", 2.0, False)
    assert offered(acd.join("c2", "q", 3.0)) == [("c2", ("1002",))]
    acd.registered("1001", 4.0, True)
    assert offered(acd.join("c3", "q", 5.0)) == [("c3", ("1001",))]
    run_until(acd, 6.0)


def test_ringall_rings_only_the_lowest_tier_with_an_available_agent() -> None:
    acd = model(spec(members=("1001:1", "1002:2", "1003:2"), strategy="ringall"))
    assert offered(acd.join("c1", "q", 0.0)) == [("c1", ("1001",))]
    assert offered(acd.join("c2", "q", 1.0)) == [("c2", ("1002", "1003"))]
