"""The ACD model: queues of callers, agents, and the decisions that join them.

Theory of operation: the asyncio service owns one `Acd`.  It feeds it every input with the time
(`now`, seconds, its monotonic clock), carries out the returned decisions in order (`decisions`),
sleeps until `next_deadline()` and then calls `tick(now)`.  The model reads no clock, does no I/O
and draws random numbers only from the `random.Random` it is given, so every test steps time.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

from pbxcore.acd.model import journal
from pbxcore.acd.model.agents import AcdError, Agent
from pbxcore.acd.model.callbacks import Callbacks
from pbxcore.acd.model.decisions import CancelOffer, Connect, Decision, Journal, Leave
from pbxcore.acd.model.queue import Caller
from pbxcore.acd.model.snapshot import Snapshot
from pbxcore.acd.model.state import Connected, QueueState
from pbxcore.acd.model.view import snapshot_of
from pbxcore.acd.spec import AgentState, JournalEvent, QueueResult, QueueSpec

LeaveReason = Literal["abandon", "exit_key", "callback", "timeout"]
EndedBy = Literal["caller", "agent"]


class Acd(Callbacks):
    """Every queue and agent of the switch."""

    def __init__(self, specs: Iterable[QueueSpec], now: float,
                 rng: random.Random | None = None) -> None:
        """Queues from `specs`; every member starts logged_out and registered.  `rng` serves the
        `random` strategy (a seeded `random.Random(0)` when None, so runs are reproducible)."""
        super().__init__(rng)
        self.reconfigure(specs, now, journal_members=False)

    # -- configuration ---------------------------------------------------------------------

    def reconfigure(self, specs: Iterable[QueueSpec], now: float, *,
                    journal_members: bool = True) -> list[Decision]:
        """Hot reload.  Waiting callers keep their place; added members are ADDMEMBER (logged
        out), removed ones REMOVEMEMBER (an agent finishes its current call first); a removed
        queue's callers leave with `empty`.  Strategy, timeouts and the rest apply at once.  An
        added member follows the agent's login: logged in (and paused, if it is paused in every
        queue) when the agent is logged in elsewhere."""
        out: list[Decision] = []
        new = {spec.name: spec for spec in specs}
        removed: list[tuple[str, str]] = []  # (queue, member): after the additions, so an
        # agent moved from one queue to another keeps its login
        for name in [n for n in self._queues if n not in new]:
            q = self._queues[name]  # still reachable while its callers leave
            for c in list(q.line):
                if c.callback is not None:  # nobody to tell: the callback fails
                    self._drop_callback(c, now, out, "queue removed")
                else:
                    self._remove(c, now, out, "empty")
            removed += [(name, m.extension) for m in q.spec.members]
        for name, spec in new.items():
            existing = self._queues.get(name)
            old = {m.extension for m in existing.spec.members} if existing else set()
            if existing is None:
                q = self._queues[name] = QueueState(spec)
            else:
                q = existing
                q.set_spec(spec)
            for m in spec.members:
                a = self._agents.get(m.extension)
                if a is None:
                    a = self._agents[m.extension] = Agent(
                        m.extension, since=now, idle_since=now,
                        registered=self._registration.get(m.extension, True),
                        direct_calls=self._direct.get(m.extension, 0))
                if m.extension not in old:
                    self._member_added(a, spec, m.tier, now, out)
                    if journal_members:
                        out.append(journal.member(name, "ADDMEMBER", m.extension, str(m.tier)))
                else:
                    a.memberships[name].tier = m.tier
            removed += [(name, ext) for ext in sorted(old) if spec.member(ext) is None]
            for c in q.line:
                self._schedule_caller(q, c, now)
            self._dirty.add(name)
        for name, ext in removed:
            self._member_removed(name, ext, now, out, journal_members)
        self._queues = {name: self._queues[name] for name in new}  # config order
        return self._finish(now, out)

    # -- callers -----------------------------------------------------------------------------

    def join(self, call_id: str, queue: str, now: float, *, priority: int = 0,
             timeout: float | None = None, announce: bool = True,
             caller: str = "") -> list[Decision]:
        """A caller enters `queue` (the `queue` action).  Higher `priority` is served first,
        FIFO within a priority.  It leaves with `timeout` after min(`timeout`, `max_wait`)
        seconds.  Refused at once with Leave `full` (FULL) past `max_len`, or `empty`
        (EXITEMPTY) when the queue's `empty` policy is `leave` and no member is logged in.
        `announce=False` (the action's `announce=none`) sends it no Announce.  `caller` is the
        caller's number for the ENTERQUEUE row."""
        q = self._queue(queue)
        if call_id in self._callers or call_id in self._connected:
            raise AcdError(f"call {call_id} is already queued")
        out: list[Decision] = []
        position = q.line.position_for(priority)
        refused: QueueResult | None = None
        if q.spec.max_len is not None and len(q.line) >= q.spec.max_len:
            refused = "full"
        elif q.spec.empty == "leave" and not self._logged_in(q):
            refused = "empty"
        if refused is not None:
            event: JournalEvent = "FULL" if refused == "full" else "EXITEMPTY"
            out.append(journal.waited(queue, event, call_id, position, position, 0.0))
            out.append(Leave(call_id, queue, refused, 0.0, position))
            return out
        self._seq += 1
        c = Caller(call_id, queue, priority, self._seq, now, position, timeout, announce)
        q.line.add(c)
        self._callers[call_id] = c
        out.append(Journal(queue, "ENTERQUEUE", call_id, None, ("", caller, str(position))))
        self._schedule_caller(q, c, now)
        self._dirty.add(queue)
        return self._finish(now, out)

    def leave(self, call_id: str, now: float, reason: LeaveReason,
              key: str = "") -> list[Decision]:
        """The caller leaves while waiting: `abandon` (it hung up: ABANDON, no Leave), `exit_key`
        (pressed `key`: EXITWITHKEY), `callback` (CALLBACK) or `timeout`.  Its live offer is
        cancelled (RINGCANCELED).  An unknown or already served call returns []."""
        c = self._callers.get(call_id)
        if c is None:
            return []
        out: list[Decision] = []
        self._remove(c, now, out, reason, key)
        return self._finish(now, out)

    # -- offers ------------------------------------------------------------------------------

    def answered(self, offer_id: int, agent: str, now: float,
                 leg_id: str = "") -> list[Decision]:
        """`agent` answered `offer_id`: Connect (CONNECT), the other agents' legs cancelled.  If
        the offer is gone (the caller left, it timed out) the answer is refused with
        CancelOffer(withdrawn) for that agent's leg.  `leg_id` (the agent leg's call id) goes to
        CONNECT's data2, Asterisk's bridged channel uniqueid."""
        off = self._offers.get(offer_id)
        if off is None or agent not in off.ringing:
            return [CancelOffer(offer_id, (agent,), "withdrawn")]
        out: list[Decision] = []
        del self._offers[offer_id]
        others = tuple(x for x in off.ringing if x != agent)
        for ext in others:
            self._agent_off_offer(self._agents[ext], now, "no_answer")
        if others:
            out.append(CancelOffer(offer_id, others, "answered_elsewhere"))
        c = self._callers.pop(off.call_id)
        q = self._queues[c.queue]
        q.line.remove(c)
        a = self._agents[agent]
        a.offer_id = None
        a.fire("answer", now)
        a.call_id, a.call_queue, a.answered_at, a.no_answers = c.call_id, c.queue, now, 0
        a.calls_today += 1
        ms = a.memberships.get(c.queue)
        if ms is not None:
            ms.calls += 1
        hold, ring = now - c.joined_at, now - off.started
        self._connected[c.call_id] = Connected(c.call_id, c.queue, agent, hold, c.position, now)
        out.append(Connect(offer_id, c.call_id, c.queue, agent, hold, c.position, ring))
        if c.callback is not None:  # the agent is on the line; now the customer is dialled
            self._dialling[c.call_id] = c
            c.attempts += 1
            out.append(Journal(c.queue, "CALLBACKATTEMPT", c.call_id, agent,
                               (c.callback, str(c.attempts), journal.secs(ring))))
        else:
            q.answered += 1
            q.answered_in_sl += hold <= q.spec.service_level
            out.append(Journal(c.queue, "CONNECT", c.call_id, agent,
                               (journal.secs(hold), leg_id, journal.secs(ring))))
        self._dirty.add(c.queue)
        return self._finish(now, out)

    def no_answer(self, offer_id: int, agent: str, now: float,
                  rejected: bool = False) -> list[Decision]:
        """`agent` did not answer (or `rejected`, declined with 486/603): RINGNOANSWER; counts
        toward `autopause_after`.  When no agent of the offer is left ringing, the caller waits
        `retry` seconds before its next offer.  Unknown offers or agents are ignored."""
        off = self._offers.get(offer_id)
        if off is None or agent not in off.ringing:
            return []
        out: list[Decision] = []
        self._ring_out(off, agent, now, out, count=True, rejected=rejected)
        return self._finish(now, out)

    def offer_failed(self, offer_id: int, agent: str, now: float) -> list[Decision]:
        """The agent's leg could not be set up (unreachable, error response): as `no_answer`
        but not counted toward auto-pause."""
        off = self._offers.get(offer_id)
        if off is None or agent not in off.ringing:
            return []
        out: list[Decision] = []
        self._ring_out(off, agent, now, out, count=False)
        return self._finish(now, out)

    def call_ended(self, call_id: str, now: float, by: EndedBy) -> list[Decision]:
        """A connected queue call ended, hung up by the caller (COMPLETECALLER) or the agent
        (COMPLETEAGENT).  The agent goes to wrap-up (`wrapup` s) or available at once."""
        conn = self._connected.pop(call_id, None)
        if conn is None:
            return []
        self._dialling.pop(call_id, None)
        event: JournalEvent = "COMPLETECALLER" if by == "caller" else "COMPLETEAGENT"
        out: list[Decision] = [journal.completed(conn.queue, event, call_id, conn.agent,
                                                 conn.hold, now - conn.answered_at,
                                                 conn.position)]
        self._end_call(conn, now)
        return self._finish(now, out)

    def transfer(self, call_id: str, now: float, target: str,
                 context: str = "") -> list[Decision]:
        """The agent transferred the caller to `target` (TRANSFER); the agent's part of the
        call is over as with `call_ended`."""
        conn = self._connected.pop(call_id, None)
        if conn is None:
            return []
        out: list[Decision] = [Journal(conn.queue, "TRANSFER", call_id, conn.agent, (
            target, context, journal.secs(conn.hold), journal.secs(now - conn.answered_at),
            str(conn.position)))]
        self._end_call(conn, now)
        return self._finish(now, out)

    # -- agents ------------------------------------------------------------------------------

    def login(self, agent: str, now: float, queue: str | None = None) -> list[Decision]:
        """Log in to `queue` or to all the agent's queues (AGENTLOGIN per queue).  Raises
        `AcdError` for an unknown agent or a queue it is not a member of."""
        a = self._agent(agent)
        out: list[Decision] = []
        for name in self._scope(a, queue):
            m = a.memberships[name]
            if not m.logged_in:
                m.logged_in, m.paused, m.since, m.calls = True, None, now, 0
                out.append(journal.member(name, "AGENTLOGIN", agent, agent))
                self._dirty.add(name)
        a.fire("login", now)
        return self._finish(now, out)

    def logout(self, agent: str, now: float, queue: str | None = None) -> list[Decision]:
        """Log out of `queue` or of all (AGENTLOGOFF per queue; a busy agent's state follows
        after its call).  May empty a queue whose policy is `leave` (EXITEMPTY)."""
        a = self._agent(agent)
        a.check("logout")
        names = self._scope(a, queue, logged_in=True)
        out: list[Decision] = []
        for name in names:
            m = a.memberships[name]
            m.logged_in, m.paused = False, None
            out.append(journal.member(name, "AGENTLOGOFF", agent, agent,
                                      journal.secs(now - m.since)))
            m.since = now
            self._dirty.add(name)
        a.fire("logout", now)
        return self._finish(now, out)

    def pause(self, agent: str, now: float, queue: str | None = None,
              reason: str = "") -> list[Decision]:
        """Pause in `queue` or in all its logged-in queues (PAUSE with reason); a busy agent
        shows `paused` after its call and wrap-up."""
        a = self._agent(agent)
        a.check("pause")
        self._scope(a, queue, logged_in=True)
        out: list[Decision] = []
        self._pause_memberships(a, queue, reason, out)
        a.fire("pause", now)
        return self._finish(now, out)

    def unpause(self, agent: str, now: float, queue: str | None = None,
                reason: str = "") -> list[Decision]:
        """Unpause (UNPAUSE with reason); the agent may be offered a call at once."""
        a = self._agent(agent)
        a.check("unpause")
        out: list[Decision] = []
        for name in self._scope(a, queue, logged_in=True):
            m = a.memberships[name]
            if m.paused is not None:
                m.paused = None
                out.append(journal.member(name, "UNPAUSE", agent, reason))
                self._dirty.add(name)
        a.no_answers = 0
        a.fire("unpause", now)
        return self._finish(now, out)

    def registered(self, agent: str, now: float, registered: bool) -> list[Decision]:
        """The agent's phone registered (True) or lost its last binding (False): an unregistered
        agent is not rung, and does not count as logged in for the `empty` policy."""
        self._registration[agent] = registered
        a = self._agents.get(agent)
        if a is None or a.registered == registered:
            return []
        a.registered = registered
        a.fire("registered" if registered else "unregistered", now)
        self._touch_agent(a)
        return self._finish(now, [])

    def direct_call(self, agent: str, now: float, active: bool) -> list[Decision]:
        """The agent started (True) or ended (False) a direct, non-queue call; while on one it
        is not offered queue calls.  Calls nest (two direct calls need two ends)."""
        # Counted for every extension, so one that becomes a member by a reload mid-call is
        # known to be on a call.
        count = self._direct.get(agent, 0)
        if not active and count == 0:
            return []
        count += 1 if active else -1
        self._direct[agent] = count
        a = self._agents.get(agent)
        if a is None:
            return []
        a.direct_calls = count
        a.fire("direct_call_start" if active else "direct_call_end", now)
        self._touch_agent(a)
        return self._finish(now, [])

    # -- time --------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Decision]:
        """Everything due by `now`: timeouts, ring timeouts, retries, wrap-up ends, overflow
        rules, announcements, alert re-evaluation, and the offers they allow."""
        out: list[Decision] = []
        while (due := self._timers.pop_due(now, self._valid)) is not None:
            self._fire_timer(due[0], due[1], now, out)
        live = 4 * len(self._callers) + len(self._offers) + len(self._agents) + len(self._queues)
        self._timers.compact(live, self._valid)
        return self._finish(now, out)

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next; None when nothing is scheduled."""
        return self._timers.next(self._valid)

    def shutdown(self, now: float) -> list[Decision]:
        """The switch stops: every live offer is cancelled, every waiting caller and connected
        call gets a SHUTDOWN row; the model is empty afterwards (agents keep their state)."""
        out: list[Decision] = []
        for q in self._queues.values():
            for c in list(q.line):
                self._remove(c, now, out, "shutdown")
        for conn in list(self._connected.values()):
            out.append(journal.completed(conn.queue, "SHUTDOWN", conn.call_id, conn.agent,
                                         conn.hold, now - conn.answered_at, conn.position))
            self._end_call(conn, now, wrapup=False)
        self._connected.clear()
        self._dialling.clear()
        for a in self._agents.values():
            if a.state == "wrapup":
                a.wrapup_until, a.call_id, a.call_queue = None, None, None
                a.fire("wrapup_done", now)
        self._timers.clear()
        self._dirty.clear()
        return out

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        """Every queue and agent as `pbx queues` / `pbx agents` show them."""
        return snapshot_of(self, now)

    def agent_states(self) -> dict[str, tuple[AgentState, str | None]]:
        """Every agent's (state, pause reason), cheaper than a snapshot: the service compares
        it after each input to journal every state change (agent_events)."""
        return {ext: (a.state, a.reason) for ext, a in self._agents.items()}

    def reset_counters(self) -> None:
        """Start a new day: zero answered/abandoned/SL counters and agents' call counts (the
        service calls this at local midnight; the model has no wall clock)."""
        for q in self._queues.values():
            q.answered = q.answered_in_sl = q.abandoned = q.timed_out = 0
        for a in self._agents.values():
            a.calls_today = 0
            for m in a.memberships.values():
                m.calls = 0
