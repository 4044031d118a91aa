"""Membership steps shared by the agent inputs and the reload: scopes, calls ending, members
joining or leaving a queue."""

from __future__ import annotations

from pbxcore.acd.model import journal
from pbxcore.acd.model.agents import AcdError, Agent, Membership
from pbxcore.acd.model.core import Core
from pbxcore.acd.model.decisions import Decision
from pbxcore.acd.model.state import Connected, QueueState
from pbxcore.acd.spec import QueueSpec


class Members(Core):
    """`Core` plus the agent- and membership-level steps `Acd`'s inputs share."""

    def _queue(self, name: str) -> QueueState:
        q = self._queues.get(name)
        if q is None:
            raise AcdError(f"no queue {name!r}")
        return q

    def _agent(self, extension: str) -> Agent:
        a = self._agents.get(extension)
        if a is None or not a.memberships:
            raise AcdError(f"{extension!r} is not a member of any queue")
        return a

    def _scope(self, a: Agent, queue: str | None, logged_in: bool = False) -> list[str]:
        """The agent's queues an input applies to: `queue`, or all (the logged-in ones)."""
        if queue is not None:
            m = a.memberships.get(queue)
            if m is None:
                raise AcdError(f"{a.extension} is not a member of queue {queue!r}")
            if logged_in and not m.logged_in:
                raise AcdError(f"{a.extension} is not logged in to queue {queue!r}")
            return [queue]
        names = [n for n, m in a.memberships.items() if m.logged_in or not logged_in]
        if not names:  # e.g. a busy agent that already logged out of every queue
            raise AcdError(f"{a.extension} is not logged in to any queue")
        return names

    def _end_call(self, conn: Connected, now: float, wrapup: bool = True) -> None:
        """The agent's part of a connected call is over: wrap-up or available."""
        a = self._agents[conn.agent]
        q = self._queues.get(conn.queue)
        if q is not None:
            q.talk.add(now - conn.answered_at)
        a.fire("call_end", now)
        a.idle_since = now
        seconds = q.spec.wrapup if q is not None and wrapup else 0.0
        if seconds > 0:
            a.wrapup_until = now + seconds
            self._timers.push(a.wrapup_until, "wrapup", a.extension)
        else:
            a.call_id = a.call_queue = None
            a.fire("wrapup_done", now)
        self._touch_agent(a)

    def _member_removed(self, queue: str, ext: str, now: float, out: list[Decision],
                        journal_members: bool) -> None:
        a = self._agents[ext]
        a.memberships.pop(queue, None)
        if journal_members:
            out.append(journal.member(queue, "REMOVEMEMBER", ext, ""))
        self._touch_agent(a)
        if not a.busy:
            a.settle(now)

    def _member_added(self, a: Agent, spec: QueueSpec, tier: int, now: float,
                      out: list[Decision]) -> None:
        """An agent joins a queue by reload: it follows its login (logged in elsewhere ->
        logged in here, paused here if paused everywhere it is logged in)."""
        logged = [m for m in a.memberships.values() if m.logged_in]
        m = a.memberships[spec.name] = Membership(tier=tier, since=0.0)
        if logged:
            m.logged_in, m.since = True, now
            if all(x.paused is not None for x in logged):
                m.paused = a.last_pause_reason or logged[0].paused
        self._dirty.add(spec.name)
