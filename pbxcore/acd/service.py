"""The ACD service: the pure queue model (pbxcore.acd.model) driven by the switch's calls and clock.

Theory of operation.  One `AcdService` per switch owns one `Acd` model.  Every input — a caller
joining (the `queue` action), an agent's phone answering or not, a login by feature code, CLI or
script, a phone that (un)registered, a call that ended — is fed to the model with `now` (the
monotonic clock), and the decisions it returns are carried out at once, in order:

* `Offer` rings agents (`offers.OfferRun`: every registered phone of each agent, screen pop in the
  INVITE); `CancelOffer` stops ringing them;
* `Connect`, `Leave` and `Announce` go to the waiting caller's task (`waiting.wait_in_queue`), which
  bridges the caller to the agent exactly as `dial` does, or returns the `queue` event, or plays
  the position / estimated wait over the hold music;
* `Alert` runs the queue's `alert` program with the `queue_alert` event (the script contract);
* `Journal` rows are written to the store's queue journal, in order, stamped with wall-clock UTC.

A timer task sleeps until the model's `next_deadline()` (woken early by any input) and feeds it
`tick(now)`; the same task notices phones that registered or expired (the registrar is polled,
cheaply, at most once a second) and starts a new day's counters at local midnight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbxcore.acd import callbacks
from pbxcore.acd.api import AgentError, AgentOp, Via
from pbxcore.acd.model import (
    Acd,
    AcdError,
    Alert,
    Announce,
    CancelOffer,
    Connect,
    Decision,
    Journal,
    Leave,
    Offer,
)
from pbxcore.acd.offers import AgentLegs, ModelInput, OfferRun
from pbxcore.acd.recovery import interrupted_rows, last_agent_states
from pbxcore.acd.spec import QueueSpec
from pbxcore.acd.waiting import Waiter, wait_in_queue
from pbxcore.script.events import Event
from pbxcore.store.journal import AgentEvent, JournalEntry
from pbxcore.verbs.base import Outcome

if TYPE_CHECKING:
    from pbxcore.call.call import Call, CallDeps

log = logging.getLogger("pbxcore.acd")

def _failed(offer_id: int, agent: str) -> ModelInput:
    return lambda acd, now: acd.offer_failed(offer_id, agent, now)


RECOVERY_WINDOW = timedelta(days=2)  # how far back a restart looks for what it left open
RECOVERY_ROWS = 100_000
REGISTRATION_POLL = 1.0  # seconds between looks at the registrar for agents' phones
ALERT_TIMEOUT = 10.0  # seconds an alert program may run


class AcdService:
    """Queues and agents of one switch (CallDeps.acd)."""

    def __init__(self, deps: CallDeps, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.deps = deps
        self.clock = clock
        self.wall = wall
        self.model = Acd(deps.config.queues, clock())
        self.waiters: dict[str, Waiter] = {}  # by call id
        self.offers: dict[int, OfferRun] = {}  # by offer id
        self.callbacks: dict[str, callbacks.CallbackCall] = {}  # pending callbacks, by id
        self.attempts: set[asyncio.Task[None]] = set()  # callbacks dialling or bridged now
        self.alerts: dict[str, dict[str, dict[str, Any]]] = {}  # queue -> figure -> raised alert
        self.agent_legs = AgentLegs()  # every agent's legs until they are over on the wire
        self._registered: dict[str, bool] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writes: asyncio.Future[None] | None = None  # tail of the journal write chain
        self._background: set[asyncio.Future[Any]] = set()
        self._day = date.today()
        self._direct: dict[str, int] = {}  # agent -> direct calls in progress
        self._agent_seen: dict[str, tuple[str, str | None]] = {}  # last state journalled

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._recover()
        self._task = asyncio.create_task(self._timer(), name="acd-timer")

    async def _recover(self) -> None:
        """After a stop or a crash: queue visits the journal shows open (ENTERQUEUE without
        its end) get an INTERRUPTED row, and agents logged in before come back logged in
        (paused with their reason), as Asterisk's persistentmembers does."""
        store, now, node = self.deps.store, self.wall(), self.deps.config.node
        rows = await store.journal(since=now - RECOVERY_WINDOW, limit=RECOVERY_ROWS)
        # Only this node's visits: on a shared PostgreSQL the other nodes' callers are alive.
        closing = interrupted_rows(r for r in rows if r.node in (node, None))
        if closing:
            log.warning("queue journal: %d queue visits left open by the last run closed as "
                        "INTERRUPTED", len(closing))
            self._chain(lambda: store.journal_append(closing), "INTERRUPTED rows")
        for agent, state, reason in last_agent_states(await store.agent_events(
                since=now - RECOVERY_WINDOW, node=node, limit=RECOVERY_ROWS)):
            if state == "logged_out" or not self.is_agent(agent):
                continue
            with contextlib.suppress(AcdError):
                self.apply(self.model.login(agent, self.clock()))
                if state == "paused":
                    self.apply(self.model.pause(agent, self.clock(), None, reason or ""))
        await callbacks.recover(self)
        await self.drain()

    async def stop(self) -> None:
        """The switch stops: SHUTDOWN rows for every waiting or connected caller, offers
        cancelled, the journal written.  Calls themselves are hung up by the switch."""
        self.apply(self.model.shutdown(self.clock()))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self.attempts):  # their legs are hung up; the rows stay pending
            task.cancel()
        await asyncio.gather(*self.attempts, return_exceptions=True)
        for run in list(self.offers.values()):
            await run.close()
        self.offers.clear()
        if self._background:
            await asyncio.wait(set(self._background), timeout=ALERT_TIMEOUT)
        await self.drain()

    async def drain(self) -> None:
        """Wait until every journal row handed to the store so far is written."""
        if self._writes is not None:
            await asyncio.shield(self._writes)

    def reconfigure(self, queues: Sequence[QueueSpec]) -> None:
        """Hot reload: waiting callers keep their place (the model's reconfigure)."""
        self.feed(lambda acd, now: acd.reconfigure(queues, now))

    # -- feeding the model ------------------------------------------------------------------------

    def feed(self, step: ModelInput) -> None:
        """Run one model input now and carry out its decisions."""
        self.apply(step(self.model, self.clock()))
        self._wake.set()

    def apply(self, decisions: Iterable[Decision]) -> None:
        rows: list[Journal] = []
        for d in decisions:
            if isinstance(d, Journal):
                rows.append(d)
                if d.event == "CALLBACKFAILED" and d.call_id in self.callbacks:
                    callbacks.gone(self, d.call_id)
                if d.event == "ENTERQUEUE" and d.call_id in self.waiters and len(d.data) > 2:
                    self.waiters[d.call_id].position = int(d.data[2])
            elif isinstance(d, Offer):
                self._offer(d)
            elif isinstance(d, CancelOffer):
                run = self.offers.get(d.offer_id)
                if run is not None:
                    run.cancel(d.agents, d.reason)
            elif isinstance(d, Connect | Leave | Announce):
                waiter = self.waiters.get(d.call_id)
                cb = self.callbacks.get(d.call_id)
                if cb is not None and isinstance(d, Connect):
                    task = asyncio.ensure_future(callbacks.attempt(self, cb, d))
                    self.attempts.add(task)
                    task.add_done_callback(self.attempts.discard)
                elif cb is not None and isinstance(d, Leave):
                    callbacks.gone(self, d.call_id)
                elif waiter is not None:
                    waiter.inbox.put_nowait(d)
                elif isinstance(d, Connect):  # the caller is already gone: free the agent
                    self._orphan(d)
            elif isinstance(d, Alert):
                self._alert(d)
        if rows:
            self._journal(rows)
        self._agent_changes()
        self._forget_finished_offers()

    def _offer(self, d: Offer) -> None:
        cb = self.callbacks.get(d.call_id)
        if cb is not None:  # a callback: no live caller, its own screen pop
            run = OfferRun(d, cb, self.feed, self.agent_legs, pop=cb.screen_pop())
            self.offers[d.offer_id] = run
            run.start()
            return
        waiter = self.waiters.get(d.call_id)
        if waiter is None:  # the model and the calls disagree: tell the model nobody rang
            for agent in d.agents:
                self.feed(_failed(d.offer_id, agent))
            return
        run = OfferRun(d, waiter.call, self.feed, self.agent_legs)
        self.offers[d.offer_id] = run
        run.start()

    def _orphan(self, d: Connect) -> None:
        run = self.offers.pop(d.offer_id, None)
        if run is not None and run.winner is not None:
            run.winner.hangup()
        self.feed(lambda acd, now: acd.call_ended(d.call_id, now, "caller"))

    def _forget_finished_offers(self) -> None:
        for offer_id, run in list(self.offers.items()):
            if run.winner is None and run.done >= set(run.offer.agents):
                del self.offers[offer_id]
                self._spawn(run.close())

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the timer ----------------------------------------------------------------------------

    async def _timer(self) -> None:
        polled = -REGISTRATION_POLL
        while True:
            now = self.clock()
            if now - polled >= REGISTRATION_POLL:
                polled = now
                if self.deps.config.cluster is not None:
                    await self._refresh_registrations()
                self._sync_registrations()
                self._midnight()
            self._wake.clear()
            self.apply(self.model.tick(self.clock()))
            deadline = self.model.next_deadline()
            delay = REGISTRATION_POLL if deadline is None else deadline - self.clock()
            delay = min(max(delay, 0.0), REGISTRATION_POLL - (self.clock() - polled))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.0))

    async def _refresh_registrations(self) -> None:
        """In a cluster an agent's phone may have registered via another node: read the
        shared store's bindings into the registrar's view first (docs/scaling.md)."""
        try:
            await self.deps.registrar.refresh_all()
        except Exception:  # the store is down: keep the view we have, say so
            log.exception("cannot read registrations from the store")

    def _sync_registrations(self) -> None:
        registrar = self.deps.registrar
        for agent in self.members():
            registered = bool(registrar.bindings(agent))
            if self._registered.get(agent) != registered:
                self._registered[agent] = registered
                self.apply(self.model.registered(agent, self.clock(), registered))

    def _midnight(self) -> None:
        today = date.today()
        if today != self._day:
            self._day = today
            self.model.reset_counters()

    def members(self) -> list[str]:
        seen: dict[str, None] = {}
        for spec in self.deps.config.queues:
            for m in spec.members:
                seen.setdefault(m.extension, None)
        return list(seen)

    # -- agents -------------------------------------------------------------------------------

    async def agent_control(self, op: AgentOp, extension: str, *, queue: str | None = None,
                            reason: str | None = None, via: Via = "cli") -> None:
        """login | logout | pause | unpause, from a feature code, a script or the CLI.
        AgentError (a ValueError) when the model refuses (unknown agent, not a member)."""
        try:
            if op in ("pause", "unpause"):
                why = reason or ""
                self.feed(lambda acd, now: getattr(acd, op)(extension, now, queue, why))
            else:
                self.feed(lambda acd, now: getattr(acd, op)(extension, now, queue))
        except AcdError as exc:
            raise AgentError(f"agent {op} {extension}: {exc}") from exc
        log.info("agent %s: %s%s (%s)", extension, op, f" {queue}" if queue else "", via)

    def is_agent(self, extension: str) -> bool:
        return any(spec.member(extension) for spec in self.deps.config.queues)

    def direct_call(self, extension: str, active: bool) -> None:
        """An agent's phone is on a call the ACD did not offer (it called out, or was dialled
        directly): not offered queue calls meanwhile."""
        if not self.is_agent(extension):
            return
        count = self._direct.get(extension, 0) + (1 if active else -1)
        self._direct[extension] = max(count, 0)
        if (active and count == 1) or (not active and count == 0):
            self.feed(lambda acd, now: acd.direct_call(extension, now, active))

    # -- alerts -------------------------------------------------------------------------------

    def _alert(self, d: Alert) -> None:
        raised = self.alerts.setdefault(d.queue, {})
        if d.raised:
            raised[d.figure] = {"figure": d.figure, "value": d.value, "threshold": d.threshold,
                                "since": self.wall().isoformat()}
        else:
            raised.pop(d.figure, None)
        state = "raised" if d.raised else "cleared"
        log.warning("queue %s: alert %s %s (%g, threshold %g)", d.queue, d.figure, state,
                    d.value, d.threshold)
        spec = self.spec(d.queue)
        if spec is not None and spec.alert_program:
            self._spawn(self._run_alert(Path(spec.alert_program), d, state))

    async def _run_alert(self, program: Path, d: Alert, state: str) -> None:
        event = Event(name="queue_alert", call_id="", extra={
            "queue": d.queue, "alert_figure": d.figure, "alert_value": f"{d.value:g}",
            "alert_threshold": f"{d.threshold:g}", "alert_state": state})
        result = await self.deps.transports.process.run(program, event, env={},
                                                        timeout=ALERT_TIMEOUT)
        if not result.ok:
            log.error("queue %s: alert program %s failed: %s", d.queue, program.name,
                      result.error)

    # -- the journal ----------------------------------------------------------------------------

    def _agent_changes(self) -> None:
        """Every agent state change becomes an agent_events row (reports, restarts)."""
        states = self.model.agent_states()
        changed = [(ext, st) for ext, st in states.items() if self._agent_seen.get(ext) != st]
        if not changed:
            return
        self._agent_seen.update(changed)
        stamp, store = self.wall(), self.deps.store
        node = self.deps.config.node
        events = [AgentEvent(time=stamp, agent=ext, state=state, reason=reason or "", node=node)
                  for ext, (state, reason) in changed]
        self._chain(lambda: store.agent_event_append(events), f"{len(events)} agent events")

    def _journal(self, rows: list[Journal]) -> None:
        stamp = self.wall()
        node = self.deps.config.node  # which switch wrote it (several may share one store)
        entries = [JournalEntry(time=stamp, queue=r.queue, event=r.event,
                                call_id=r.call_id or "NONE", agent=r.agent or "NONE",
                                data=tuple(r.data), node=node) for r in rows]
        store = self.deps.store
        self._chain(lambda: store.journal_append(entries), f"{len(entries)} journal rows")

    def _chain(self, op: Callable[[], Awaitable[None]], what: str) -> None:
        """Store writes in the order they were made, never awaited by a decision."""
        previous = self._writes

        async def write() -> None:
            if previous is not None:
                await previous
            try:
                await op()
            except Exception:  # logged; the calls go on
                log.exception("queue journal: %s not written", what)

        self._writes = asyncio.ensure_future(write())

    # -- reading ------------------------------------------------------------------------------

    def spec(self, name: str) -> QueueSpec | None:
        return next((q for q in self.deps.config.queues if q.name == name), None)

    def queue_status(self) -> list[dict[str, Any]]:
        """`pbx queues` (docs/operations.md)."""
        now = self.clock()
        snap = self.model.snapshot(now)
        waiting_callbacks: dict[str, list[dict[str, Any]]] = {}
        for queue, cb_id, number, attempts in self.model.callbacks():
            cb = self.callbacks.get(cb_id)
            waiting_callbacks.setdefault(queue, []).append({
                "id": cb_id, "number": number, "attempts": attempts,
                "requested": cb.entry.requested.isoformat() if cb is not None else None})
        out = []
        for q in snap.queues:
            spec = self.spec(q.name)
            raised = list(self.alerts.get(q.name, {}).values())
            out.append({
                "name": q.name, "strategy": q.strategy, "waiting": q.waiting,
                "longest_wait": round(q.longest_wait, 1), "agents": dict(q.agents),
                "answered_today": q.answered, "abandoned_today": q.abandoned,
                "sl_today": q.service_level, "sl_offered_today": q.service_level_offered,
                "service_level": spec.service_level if spec else None,
                "alert": raised[0] if raised else None,
                "callbacks": waiting_callbacks.get(q.name, []),
            })
        return out

    def agent_status(self) -> list[dict[str, Any]]:
        """`pbx agents` (docs/operations.md)."""
        now, wall = self.clock(), self.wall()
        names = {u.extension: u.name or "" for u in self.deps.config.users}
        return [{
            "extension": a.extension, "name": names.get(a.extension, ""), "state": a.state,
            "reason": a.reason, "since": (wall - timedelta(seconds=now - a.since)).isoformat(),
            "state_seconds": round(now - a.since, 1), "calls_today": a.calls,
            "queues": list(a.queues), "logged_in": list(a.logged_in),
            "paused_in": list(a.paused_in), "registered": a.registered,
            "on_direct_call": a.on_direct_call,
        } for a in self.model.snapshot(now).agents]

    def agent_view(self, extension: str) -> dict[str, Any]:
        for a in self.agent_status():
            if a["extension"] == extension:
                return {"extension": extension, "state": a["state"], "reason": a["reason"]}
        raise ValueError(f"agent {extension} is not a member of any queue")

    # -- the caller's side ----------------------------------------------------------------------

    async def enqueue(self, call: Call, queue: QueueSpec, *, priority: int,
                      timeout: float | None, exit_key: str, announce: tuple[str, ...] | None,
                      whisper: str | None) -> Outcome | None:
        """The `queue` action (pbxcore.acd.waiting)."""
        return await wait_in_queue(self, call, queue, priority=priority, timeout=timeout,
                                   exit_key=exit_key, announce=announce, whisper=whisper)
