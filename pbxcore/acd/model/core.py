"""The model's machinery under `Acd`'s inputs: dispatching offers, removing callers, timers.

Dispatch (`_dispatch`): the queues touched by an input are walked together, always serving the
best waiting caller first across them (higher priority, then earlier arrival), each caller in
turn offered by its queue's strategy to eligible members (Asterisk's autofill: every caller that
can be served now is offered, not only the head).  A queue stops when it has no eligible
member left; within a priority, a caller that found no agent of its tier ends that priority
(the callers behind it have waited no longer).  So one input costs O(members of the touched
queues + offers made + callers ahead that ring or wait out a retry), whatever the length of the
line.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Literal

from pbxcore.acd.model import journal
from pbxcore.acd.model.agents import NO_ANSWER_REASON, Agent, AgentEvent
from pbxcore.acd.model.decisions import Announce, CancelOffer, Decision, Journal, Leave, Offer
from pbxcore.acd.model.estimate import estimated_wait, free_in
from pbxcore.acd.model.queue import Caller, Cursor
from pbxcore.acd.model.state import Connected, OfferState, QueueState, TimerKind, Timers
from pbxcore.acd.model.strategies import Candidate, choose
from pbxcore.acd.spec import JournalEvent

INFINITE_LEVEL = 1 << 30

Exit = Literal["abandon", "shutdown", "timeout", "empty", "exit_key", "callback"]
_EXIT_EVENT: dict[str, JournalEvent] = {
    "abandon": "ABANDON", "shutdown": "SHUTDOWN", "timeout": "EXITWITHTIMEOUT",
    "empty": "EXITEMPTY", "callback": "CALLBACK", "exit_key": "EXITWITHKEY",
}


@dataclass
class _Head:
    key: tuple[int, int]
    queue: QueueState
    cursor: Cursor
    caller: Caller

    def __lt__(self, other: _Head) -> bool:
        return self.key < other.key


class Core:
    """State and internal steps; `Acd` adds the public inputs."""

    def __init__(self, rng: random.Random | None) -> None:
        self._rng = rng if rng is not None else random.Random(0)
        self._queues: dict[str, QueueState] = {}
        self._agents: dict[str, Agent] = {}
        self._callers: dict[str, Caller] = {}
        self._offers: dict[int, OfferState] = {}
        self._connected: dict[str, Connected] = {}
        self._dialling: dict[str, Caller] = {}  # callbacks whose agent answered: the customer rings
        self._timers = Timers()
        self._registration: dict[str, bool] = {}  # every extension reported, agent or not
        self._direct: dict[str, int] = {}  # direct calls in progress per extension
        self._next_offer = 0
        self._seq = 0
        self._dirty: set[str] = set()  # queues to dispatch and re-evaluate at the end of an input

    # -- lookups -----------------------------------------------------------------------------

    def _agent_or_none(self, extension: str) -> Agent | None:
        return self._agents.get(extension)

    def _serving(self, q: QueueState) -> list[Agent]:
        """Members logged in to q, not paused there, phone registered (the estimate's n)."""
        out = []
        for m in q.spec.members:
            a = self._agents[m.extension]
            ms = a.memberships.get(q.spec.name)
            if ms is not None and ms.logged_in and ms.paused is None and a.registered:
                out.append(a)
        return out

    def _logged_in(self, q: QueueState) -> int:
        """Members that count as logged in for the `empty` policy: logged in to q (paused or
        not, busy or not) with a registered phone.  logged_out and unregistered don't count."""
        return sum(1 for m in q.spec.members
                   if self._agents[m.extension].logged_in(q.spec.name)
                   and self._agents[m.extension].registered)

    def _touch_agent(self, a: Agent) -> None:
        self._dirty.update(a.memberships)

    # -- the end of every input ----------------------------------------------------------------

    def _finish(self, now: float, out: list[Decision]) -> list[Decision]:
        """Apply the `empty` policy, make the offers now possible, re-evaluate alerts, until
        nothing more changes (a queue emptied by policy frees agents for other queues)."""
        while self._dirty:
            dirty, self._dirty = sorted(self._dirty), set()
            queues = [self._queues[n] for n in dirty if n in self._queues]
            for q in queues:
                if q.spec.empty == "leave" and len(q.line) and not self._logged_in(q):
                    for c in list(q.line):
                        self._remove(c, now, out, "empty")
            self._dispatch(now, queues, out)
            for q in queues:
                self._alerts(q, now, out)
        return out

    def _alerts(self, q: QueueState, now: float, out: list[Decision]) -> None:
        oldest = q.line.oldest()
        longest = now - oldest.joined_at if oldest else 0.0
        th = q.spec.alert
        if oldest and th.longest_wait is not None and now >= oldest.joined_at + th.longest_wait:
            longest = max(longest, th.longest_wait)  # reached at its timer, whatever the float
        out.extend(q.alerts.evaluate(q.spec.name, th, len(q.line), longest))
        at = None
        if oldest and th.longest_wait is not None and "longest_wait" not in q.alerts.raised:
            at = oldest.joined_at + th.longest_wait
        if at != q.alert_at:  # push once per change, not once per input
            q.alert_at = at
            if at is not None:
                self._timers.push(at, "alert", q.spec.name)

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, now: float, queues: list[QueueState], out: list[Decision]) -> None:
        heads: list[_Head] = []
        for q in queues:
            self._push_head(heads, q, q.line.cursor())
        while heads:
            head = heapq.heappop(heads)
            q, c = head.queue, head.caller
            agents, any_eligible = self._pick(q, c)
            if agents:
                self._offer(q, c, agents, now, out)
                head.cursor.advance()
            elif not any_eligible:
                continue  # this queue has nobody left to offer to
            elif q.spec.overflow:
                head.cursor.skip_priority()
            else:
                continue
            self._push_head(heads, q, head.cursor)

    @staticmethod
    def _push_head(heads: list[_Head], q: QueueState, cursor: Cursor) -> None:
        c = cursor.current()
        if c is not None:
            heapq.heappush(heads, _Head((-c.priority, c.seq), q, cursor, c))

    def _pick(self, q: QueueState, c: Caller) -> tuple[tuple[str, ...], bool]:
        """(agents to ring, whether q has any eligible member at all)."""
        name = q.spec.name
        level = c.level if q.spec.overflow else INFINITE_LEVEL
        found: list[tuple[int, int, Agent]] = []
        any_eligible = False
        for i, m in enumerate(q.spec.members):
            a = self._agents[m.extension]
            if a.eligible(name):
                any_eligible = True
                if m.tier <= level:
                    found.append((m.tier, i, a))
        if not found:
            return (), any_eligible
        low = min(t for t, _, _ in found)
        cands = [Candidate(a.extension, i, a.idle_since, a.memberships[name].calls)
                 for t, i, a in found if t == low]
        last = q.index.get(q.last_offered) if q.last_offered is not None else None
        return choose(q.spec.strategy, cands, last, self._rng), True

    def _offer(self, q: QueueState, c: Caller, agents: tuple[str, ...], now: float,
               out: list[Decision]) -> None:
        self._next_offer += 1
        oid = self._next_offer
        for ext in agents:
            a = self._agents[ext]
            a.fire("offer", now)
            a.offer_id = oid
        q.last_offered = agents[-1]
        ring = q.spec.ring_timeout
        self._offers[oid] = OfferState(oid, c.call_id, q.spec.name, list(agents), now, now + ring)
        c.offer_id = oid
        self._timers.push(now + ring, "ring", str(oid))
        out.append(Offer(oid, c.call_id, q.spec.name, agents, ring))

    # -- offers ending -------------------------------------------------------------------------

    def _agent_off_offer(self, a: Agent, now: float, event: AgentEvent) -> None:
        a.offer_id = None
        a.fire(event, now)
        self._touch_agent(a)

    def _ring_out(self, off: OfferState, ext: str, now: float, out: list[Decision],
                  count: bool, rejected: bool = False) -> None:
        """One agent of an offer did not take it (no answer, rejected, or failed)."""
        off.ringing.remove(ext)
        a = self._agents[ext]
        out.append(Journal(off.queue, "RINGNOANSWER", off.call_id, ext,
                           (journal.ms(now - off.started),)))
        q = self._queues.get(off.queue)
        if count:
            a.no_answers += 1
            limit = q.spec.autopause_after if q else 0
            if limit and a.no_answers >= limit:
                # Auto-pause in every queue: the agent is away from the phone, not away from
                # one queue (Asterisk's autopause=all).
                a.no_answers = 0
                self._pause_memberships(a, None, NO_ANSWER_REASON, out)
        self._agent_off_offer(a, now, "reject" if rejected else "no_answer")
        if not off.ringing:
            self._offer_over(off, now)

    def _offer_over(self, off: OfferState, now: float) -> None:
        """Nobody answered: the caller waits `retry` seconds before its next offer."""
        del self._offers[off.offer_id]
        c = self._callers.get(off.call_id)
        if c is None:
            return
        c.offer_id = None
        q = self._queues[c.queue]
        if q.spec.retry > 0:
            c.retry_at = now + q.spec.retry
            self._timers.push(c.retry_at, "retry", c.call_id)
        self._dirty.add(c.queue)

    def _withdraw(self, off: OfferState, now: float, out: list[Decision]) -> None:
        """The caller left while its offer rang: cancel every leg (RINGCANCELED)."""
        del self._offers[off.offer_id]
        for ext in off.ringing:
            out.append(Journal(off.queue, "RINGCANCELED", off.call_id, ext,
                               (journal.ms(now - off.started),)))
            self._agent_off_offer(self._agents[ext], now, "no_answer")
        out.append(CancelOffer(off.offer_id, tuple(off.ringing), "caller_left"))

    # -- callers leaving ----------------------------------------------------------------------

    def _remove(self, c: Caller, now: float, out: list[Decision], how: Exit,
                key: str = "") -> None:
        """Take a waiting caller out of its queue without an agent; journal why; Leave unless
        the caller is gone anyway (abandon, shutdown)."""
        q = self._queues[c.queue]
        position, wait = q.line.position(c), now - c.joined_at
        if c.offer_id is not None:
            self._withdraw(self._offers[c.offer_id], now, out)
        q.line.remove(c)
        del self._callers[c.call_id]
        self._dirty.add(c.queue)
        name = q.spec.name
        if how == "exit_key":
            out.append(Journal(name, "EXITWITHKEY", c.call_id, None,
                               (key, str(position), str(c.position), journal.secs(wait))))
        else:
            out.append(journal.waited(name, _EXIT_EVENT[how], c.call_id, position, c.position,
                                      wait))
        q.abandoned += how == "abandon"
        q.timed_out += how == "timeout"
        if how not in ("abandon", "shutdown"):
            out.append(Leave(c.call_id, name, how, wait, c.position))  # type: ignore[arg-type]

    # -- caller timers -------------------------------------------------------------------------

    def _schedule_caller(self, q: QueueState, c: Caller, now: float) -> None:
        """(Re)compute the caller's timeout, overflow level and next announcement."""
        # A callback has no caller on the line to lose patience: it never times out.
        limits = [] if c.callback is not None else [
            t for t in (c.action_timeout, q.spec.max_wait) if t is not None]
        c.timeout_at = c.joined_at + min(limits) if limits else None
        if c.timeout_at is not None:
            self._timers.push(max(c.timeout_at, now), "timeout", c.call_id)
            c.timeout_at = max(c.timeout_at, now)
        self._set_level(q, c, now)
        every = q.spec.announce_every
        if not c.announce or every is None or every <= 0:
            c.next_announce = None
        elif c.next_announce is None:
            c.next_announce = now + every
            self._timers.push(c.next_announce, "announce", c.call_id)

    def _set_level(self, q: QueueState, c: Caller, now: float) -> None:
        # Absolute times, not `now - joined_at`: the timer fires at exactly joined_at + after,
        # and the float subtraction can land just short of `after` (a timer that never ends).
        rules = q.spec.overflow
        c.level = max([1] + [r.tier for r in rules if c.joined_at + r.after <= now])
        later = [c.joined_at + r.after for r in rules if c.joined_at + r.after > now]
        c.next_level_at = min(later) if later else None
        if c.next_level_at is not None:
            self._timers.push(c.next_level_at, "overflow", c.call_id)

    def _announce(self, c: Caller, now: float, out: list[Decision]) -> None:
        q = self._queues[c.queue]
        every = q.spec.announce_every
        c.next_announce = now + every if every else None
        if c.next_announce is not None:
            self._timers.push(c.next_announce, "announce", c.call_id)
        if c.offer_id is None:  # not while an agent's phone rings for it (Asterisk neither)
            position = q.line.position(c)
            out.append(Announce(c.call_id, q.spec.name, position, self.estimate(q, position, now)))

    def estimate(self, q: QueueState, position: int, now: float) -> float | None:
        """The estimated wait of position `position` in q (estimate.py)."""
        talk, wrap = q.talk.mean, q.spec.wrapup
        r: list[float] = []
        for a in self._serving(q):
            if a.direct_calls:
                r.append(talk + wrap)
            elif a.state == "talking":
                r.append(free_in(talk, wrap, now - a.answered_at))
            elif a.state == "wrapup" and a.wrapup_until is not None:
                r.append(max(0.0, a.wrapup_until - now))
            else:
                r.append(0.0)
        return estimated_wait(position, talk + wrap, r)

    # -- timers --------------------------------------------------------------------------------

    def _valid(self, at: float, kind: TimerKind, key: str) -> bool:
        if kind == "ring":
            off = self._offers.get(int(key))
            return off is not None and off.deadline == at
        if kind == "wrapup":
            a = self._agents.get(key)
            return a is not None and a.state == "wrapup" and a.wrapup_until == at
        if kind == "alert":
            q = self._queues.get(key)
            return q is not None and q.alert_at == at
        c = self._callers.get(key)
        if c is None:
            return False
        return at == {"timeout": c.timeout_at, "retry": c.retry_at,
                      "overflow": c.next_level_at, "announce": c.next_announce}[kind]

    def _fire_timer(self, kind: TimerKind, key: str, now: float, out: list[Decision]) -> None:
        if kind == "ring":
            off = self._offers[int(key)]
            out.append(CancelOffer(off.offer_id, tuple(off.ringing), "ring_timeout"))
            for ext in list(off.ringing):
                self._ring_out(off, ext, now, out, count=True)
        elif kind == "wrapup":
            a = self._agents[key]
            a.wrapup_until = None
            a.call_id = a.call_queue = None
            a.fire("wrapup_done", now)
            self._touch_agent(a)
        elif kind == "alert":
            self._dirty.add(key)
        else:
            c = self._callers[key]
            if kind == "timeout":
                self._remove(c, now, out, "timeout")
            elif kind == "retry":
                c.retry_at = None
                self._dirty.add(c.queue)
            elif kind == "overflow":
                self._set_level(self._queues[c.queue], c, now)
                self._dirty.add(c.queue)
            else:
                self._announce(c, now, out)

    # -- agents --------------------------------------------------------------------------------

    def _pause_memberships(self, a: Agent, queue: str | None, reason: str,
                           out: list[Decision]) -> None:
        for name, m in a.memberships.items():
            if m.logged_in and queue in (None, name) and m.paused != reason:
                m.paused = reason
                out.append(journal.member(name, "PAUSE", a.extension, reason))
        a.last_pause_reason = reason
        self._touch_agent(a)
