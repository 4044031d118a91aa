"""Random sequences of inputs against the model, as a service would drive it (hypothesis).

Invariants after every step: an agent is in at most one live offer or call; every caller is
served at most once and never after it left; an offer goes to a caller only when every caller
ahead of it in its queue (priority, then arrival) is already ringing or waiting out a retry; no
caller is ready while an agent eligible for it is available (work conservation).
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pbxcore.acd.model import (
    Acd,
    AcdError,
    CancelOffer,
    Connect,
    Decision,
    Journal,
    Leave,
    Offer,
)
from pbxcore.acd.spec import STRATEGIES
from tests.unit.acd.helpers import spec

AGENTS = ("1001", "1002", "1003", "1004")
QUEUES = ("a", "b")


class AcdMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.acd: Acd | None = None
        self.calls = 0
        self.ringing: dict[str, int] = {}  # agent -> offer it rings for (as the service sees)
        self.offers: dict[int, Offer] = {}
        self.talking: dict[str, str] = {}  # agent -> call
        self.connected: dict[str, str] = {}  # call -> agent
        self.served: set[str] = set()
        self.gone: set[str] = set()
        self.offered_now: list[Offer] = []
        self.dialling: set[str] = set()  # callbacks whose agent answered: the customer rings

    @rule(strategy_a=st.sampled_from(STRATEGIES), strategy_b=st.sampled_from(STRATEGIES),
          seed=st.integers(0, 3), wrapup=st.sampled_from([0.0, 5.0]),
          retry=st.sampled_from([0.0, 3.0]), empty=st.sampled_from(["join", "leave"]))
    @precondition(lambda self: self.acd is None)
    def start(self, strategy_a: str, strategy_b: str, seed: int, wrapup: float, retry: float,
              empty: str) -> None:
        specs = [spec("a", members=("1001", "1002:2", "1003"), strategy=strategy_a,
                      wrapup=wrapup, retry=retry, ring_timeout=10, max_len=6, empty=empty,
                      max_wait=90, announce_every=20, callback_retries=1,
                      callback_retry_delay=4.0),
                 spec("b", members=("1003", "1004", "1001:2"), strategy=strategy_b,
                      wrapup=wrapup, retry=retry, ring_timeout=8, autopause_after=2)]
        self.acd = Acd(specs, 0.0, rng=random.Random(seed))

    # -- carrying out decisions like the service ---------------------------------------------

    def apply(self, ds: list[Decision]) -> None:
        for d in ds:
            if isinstance(d, Offer):
                for a in d.agents:
                    assert a not in self.ringing and a not in self.talking, f"{a} offered twice"
                    self.ringing[a] = d.offer_id
                assert d.call_id not in self.served and d.call_id not in self.gone
                self.offers[d.offer_id] = d
                self.offered_now.append(d)
            elif isinstance(d, CancelOffer):
                for a in d.agents:
                    if self.ringing.get(a) == d.offer_id:
                        del self.ringing[a]
            elif isinstance(d, Connect):
                assert d.call_id not in self.served, "served twice"
                if d.call_id.startswith("cb-"):
                    self.dialling.add(d.call_id)
                assert d.call_id not in self.gone
                self.served.add(d.call_id)
                self.ringing.pop(d.agent, None)
                self.talking[d.agent] = d.call_id
                self.connected[d.call_id] = d.agent
            elif isinstance(d, Leave):
                self.gone.add(d.call_id)
            elif isinstance(d, Journal) and d.event in ("ABANDON", "SHUTDOWN") \
                    and d.agent is None and d.call_id:
                self.gone.add(d.call_id)
            elif isinstance(d, Journal) and d.event == "CALLBACKFAILED" and d.call_id:
                self.gone.add(d.call_id)

    def step(self, ds: list[Decision]) -> None:
        self.offered_now = []
        self.apply(ds)

    # -- rules --------------------------------------------------------------------------------

    @rule(queue=st.sampled_from(QUEUES), priority=st.sampled_from([0, 0, 1, 5]),
          timeout=st.sampled_from([None, None, 15.0]))
    @precondition(lambda self: self.acd is not None)
    def join(self, queue: str, priority: int, timeout: float | None) -> None:
        assert self.acd is not None
        self.calls += 1
        self.step(self.acd.join(f"c{self.calls}", queue, self.now, priority=priority,
                                timeout=timeout))

    @rule(data=st.data(), how=st.sampled_from(["abandon", "exit_key", "callback"]))
    @precondition(lambda self: self.acd is not None and self.acd._callers)
    def leave(self, data: st.DataObject, how: str) -> None:
        assert self.acd is not None
        live = sorted(k for k, c in self.acd._callers.items() if c.callback is None)
        if not live:
            return
        call = data.draw(st.sampled_from(live))
        self.step(self.acd.leave(call, self.now, how, key="0"))  # type: ignore[arg-type]

    @rule(data=st.data())
    @precondition(lambda self: self.acd is not None and self.acd._callers)
    def ask_callback(self, data: st.DataObject) -> None:
        """The caller presses the callback key: a virtual caller takes its very place."""
        assert self.acd is not None
        live = sorted(k for k, c in self.acd._callers.items() if c.callback is None)
        if not live:
            return
        call = data.draw(st.sampled_from(live))
        c = self.acd._callers[call]
        q = self.acd._queues[c.queue]
        before = q.line.position(c)
        ds = self.acd.request_callback(call, self.now, f"cb-{call}", "5550100")
        v = self.acd._callers.get(f"cb-{call}")
        if v is not None:  # (it may have been offered and answered... not in one step: no)
            assert q.line.position(v) == before, "the callback lost the caller's place"
        self.step(ds)

    @rule(data=st.data())
    @precondition(lambda self: any(self.offers[o].call_id.startswith("cb-")
                                   for o in self.ringing.values() if o in self.offers))
    def agent_takes_a_callback(self, data: st.DataObject) -> None:
        """An agent answers a callback's offer (so that the customer side is exercised)."""
        assert self.acd is not None
        agent = data.draw(st.sampled_from(sorted(
            a for a, o in self.ringing.items()
            if o in self.offers and self.offers[o].call_id.startswith("cb-"))))
        oid = self.ringing.pop(agent)
        self.step(self.acd.answered(oid, agent, self.now))

    @rule(data=st.data(), reached=st.booleans())
    @precondition(lambda self: bool(self.dialling))
    def customer(self, data: st.DataObject, reached: bool) -> None:
        """The dialled customer of a callback answers, or not (back in line, or failed)."""
        assert self.acd is not None
        cb = data.draw(st.sampled_from(sorted(self.dialling)))
        self.dialling.discard(cb)
        if reached:
            self.step(self.acd.callback_connected(cb, self.now))
            return
        agent = self.connected.pop(cb)
        del self.talking[agent]
        self.served.discard(cb)  # it may be offered again after its back-off
        self.step(self.acd.callback_unanswered(cb, self.now, "busy"))

    @rule(data=st.data(), outcome=st.sampled_from(["answer", "answer", "no_answer", "reject",
                                                   "failed"]))
    @precondition(lambda self: bool(self.ringing))
    def ring_outcome(self, data: st.DataObject, outcome: str) -> None:
        assert self.acd is not None
        agent = data.draw(st.sampled_from(sorted(self.ringing)))
        oid = self.ringing.pop(agent)
        if outcome == "answer":
            ds = self.acd.answered(oid, agent, self.now)
        elif outcome == "failed":
            ds = self.acd.offer_failed(oid, agent, self.now)
        else:
            ds = self.acd.no_answer(oid, agent, self.now, rejected=outcome == "reject")
        self.step(ds)

    @rule(data=st.data(), by=st.sampled_from(["caller", "agent", "transfer"]))
    @precondition(lambda self: bool(self.connected))
    def hang_up(self, data: st.DataObject, by: str) -> None:
        assert self.acd is not None
        call = data.draw(st.sampled_from(sorted(self.connected)))
        agent = self.connected.pop(call)
        del self.talking[agent]
        self.dialling.discard(call)
        if by == "transfer":
            ds = self.acd.transfer(call, self.now, "2000")
        else:
            ds = self.acd.call_ended(call, self.now, by)  # type: ignore[arg-type]
        self.step(ds)

    @rule(agent=st.sampled_from(AGENTS), what=st.sampled_from(
        ["login", "login", "logout", "pause", "unpause"]), queue=st.sampled_from([None, *QUEUES]))
    @precondition(lambda self: self.acd is not None)
    def agent_input(self, agent: str, what: str, queue: str | None) -> None:
        assert self.acd is not None
        try:
            if what == "pause":
                ds = self.acd.pause(agent, self.now, queue=queue, reason="r")
            else:
                ds = getattr(self.acd, what)(agent, self.now, queue=queue)
        except AcdError:
            return
        self.step(ds)

    @rule(agent=st.sampled_from(AGENTS), on=st.booleans(), direct=st.booleans())
    @precondition(lambda self: self.acd is not None)
    def phone(self, agent: str, on: bool, direct: bool) -> None:
        assert self.acd is not None
        if direct:
            self.step(self.acd.direct_call(agent, self.now, on))
        else:
            self.step(self.acd.registered(agent, self.now, on))

    @rule(dt=st.sampled_from([0.5, 2.0, 5.0, 12.0, 40.0]))
    @precondition(lambda self: self.acd is not None)
    def wait(self, dt: float) -> None:
        assert self.acd is not None
        target = self.now + dt
        while (d := self.acd.next_deadline()) is not None and d <= target:
            assert d >= self.now, "a deadline in the past"
            self.now = d
            self.step(self.acd.tick(d))
            self.check_order()
            self.check_model()
        self.now = target

    @rule(drop=st.sampled_from(AGENTS))
    @precondition(lambda self: self.acd is not None)
    def reload(self, drop: str) -> None:
        assert self.acd is not None
        specs = []
        for name, q in self.acd._queues.items():
            members = tuple(f"{m.extension}:{m.tier}" for m in q.spec.members
                            if m.extension != drop)
            back = tuple(f"{a}:1" for a in AGENTS if a not in [m.split(":")[0] for m in members]
                         and a != drop)[:1]
            specs.append(spec(name, members=members + back, strategy=q.spec.strategy,
                              retry=q.spec.retry, wrapup=q.spec.wrapup))
        self.step(self.acd.reconfigure(specs, self.now))

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def check_order(self) -> None:
        """Every caller offered in the last step had no ready caller ahead of it."""
        if self.acd is None:
            return
        for o in self.offered_now:
            q = self.acd._queues.get(o.queue)
            c = self.acd._callers.get(o.call_id)
            if q is None or c is None:
                continue
            for ahead in q.line:
                if ahead is c:
                    break
                assert not ahead.ready, f"{ahead.call_id} was skipped for {c.call_id}"

    @invariant()
    def check_model(self) -> None:
        acd = self.acd
        if acd is None:
            return
        in_offers: dict[str, int] = {}
        for off in acd._offers.values():
            for a in off.ringing:
                assert a not in in_offers, f"{a} in two offers"
                in_offers[a] = off.offer_id
        busy_agents = [c.agent for c in acd._connected.values()]
        assert len(busy_agents) == len(set(busy_agents)), "an agent on two queue calls"
        for ext, a in acd._agents.items():
            assert (a.state == "ringing") == (ext in in_offers), (ext, a.state)
            assert a.state != "talking" or ext in busy_agents
            assert not (ext in in_offers and ext in busy_agents)
        assert set(acd._connected) == set(self.connected)
        for name, q in acd._queues.items():
            # A callback has nobody on the line: it never times out, is never announced.
            assert all(c.timeout_at is None and c.next_announce is None
                       for c in q.line if c.callback is not None)
            ready = [c for c in q.line if c.ready]
            if ready:
                free = [m.extension for m in q.spec.members
                        if acd._agents[m.extension].eligible(name)]
                assert not free, f"{ready[0].call_id} waits while {free} are free in {name}"


TestAcdMachine = AcdMachine.TestCase
TestAcdMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])
