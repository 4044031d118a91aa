"""Callbacks that keep the place, the service side: asked for, stored, rung back, bridged.

Theory of operation.  A waiting caller presses its queue's `callback_key` (`waiting.py`):
`request` checks the number (the caller's own, From's user part) against the queue's
`callback_allow` (default: the switch's extensions and numbers a configured trunk routes — a
callback dials a number the *caller* chose, the classic toll-fraud door), stores a `pending` row
(migration 0007) and feeds the model `request_callback`: the caller leaves with `callback` and a
virtual caller keeps its place.  When the model offers it, the agents' legs ring with the screen
pop `[QUEUE] callback for NUMBER` and `X-Pbx-Callback: NUMBER`.  The agent who answers hears
ringback while `attempt` dials the customer (an extension to its phones, a number through its
trunk: `dialer.resolve_label`); answered, the two legs are bridged (`media.bridge.Bridge`) until
either hangs up, and the attempt gets a CDR of its own (direction outbound, both legs).  Not
answered (busy, no answer, failed) the model puts the callback back in its place after the
back-off, or gives up (CALLBACKFAILED).  The store row follows every step, so `recover`, at
start, re-enters every pending callback in request order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pbxcore.acd.model import Connect
from pbxcore.acd.offers import ScreenPop, release
from pbxcore.acd.spec import QueueSpec
from pbxcore.call.dialer import DialRefused, leg_record, resolve_label
from pbxcore.call.outbound import DialResult, OutboundLeg
from pbxcore.media.bridge import Bridge
from pbxcore.media.session import MediaSession
from pbxcore.rtp.tones import ringback_eu
from pbxcore.script.sanitize import env_value
from pbxcore.sip.sdp import build_offer
from pbxcore.store.base import CdrEnd, CdrStart, Disposition
from pbxcore.store.callbacks import CallbackEntry, CallbackState

if TYPE_CHECKING:
    from pbxcore.acd.service import AcdService
    from pbxcore.call.call import CallDeps, CallInfo

log = logging.getLogger("pbxcore.acd")

CUSTOMER_RING = 30.0  # seconds the customer's phone rings before the attempt is a no-answer


@lru_cache(maxsize=64)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def callback_allowed(deps: CallDeps, spec: QueueSpec, number: str) -> bool:
    """May a callback of queue `spec` dial `number`?  Its `callback_allow` regexes (whole
    number), or by default an extension of the switch or a number a configured trunk routes."""
    if not number or number == "anonymous":
        return False
    if spec.callback_allow is not None:
        return any(_pattern(p).fullmatch(number) for p in spec.callback_allow)
    config = deps.config
    return config.user(number) is not None or config.trunk_for_number(number) is not None


@dataclass
class CallbackCall:
    """A callback with no live caller: what an offer's legs need (offers.Party), and the
    bookkeeping of one attempt (its CDR legs)."""

    deps: CallDeps
    entry: CallbackEntry
    vars: dict[str, str] = field(default_factory=dict)
    background: list[asyncio.Future[Any]] = field(default_factory=list)
    legs: list[dict[str, Any]] = field(default_factory=list)
    max_forwards: int = 70

    @property
    def info(self) -> CallInfo:
        from pbxcore.call.call import CallInfo  # call.py imports the ACD's api, not this

        e = self.entry
        return CallInfo(call_id=e.id, sip_call_id="", caller=e.number,
                        caller_name=f"callback for {e.number}", called=e.queue)

    def add_leg(self, data: dict[str, Any]) -> None:
        self.legs.append(data)

    def screen_pop(self) -> ScreenPop:
        """Display `[QUEUE] callback for NUMBER`, header `X-Pbx-Callback: NUMBER`."""
        e = self.entry
        number = env_value(e.number, 64)
        return (env_value(f"[{e.queue}] callback for {number}", 100),
                [("X-Pbx-Queue", e.queue), ("X-Pbx-Callback", number),
                 ("X-Pbx-Call-Id", e.id)])


def new_callback_id() -> str:
    return f"cb-{secrets.token_hex(8)}"


def request(svc: AcdService, call_id: str, spec: QueueSpec, number: str, priority: int,
            position: int) -> str | None:
    """The caller `call_id` asked for a callback on `number`: stored, then the model's
    `request_callback`.  The callback's id, or None when `number` may not be dialled."""
    if not callback_allowed(svc.deps, spec, number):
        log.warning("queue %s: callback to %s refused by callback_allow", spec.name,
                    env_value(number, 64))
        return None
    entry = CallbackEntry(new_callback_id(), spec.name, number, priority, svc.wall(),
                          call_id=call_id, position=position)
    svc.callbacks[entry.id] = CallbackCall(svc.deps, entry)
    save(svc, entry)
    svc.feed(lambda model, now: model.request_callback(call_id, now, entry.id, number))
    return entry.id


def save(svc: AcdService, entry: CallbackEntry, state: CallbackState | None = None) -> None:
    """Write the callback's row, after every store write made before (the journal's chain)."""
    row = replace(entry, state=state or entry.state, updated=svc.wall())
    cb = svc.callbacks.get(entry.id)
    if cb is not None:
        cb.entry = row
    if row.state != "pending":
        svc.callbacks.pop(entry.id, None)
    store = svc.deps.store
    svc._chain(lambda: store.callback_save(row), f"callback {entry.id}")


async def recover(svc: AcdService) -> None:
    """At start: every pending callback back into its queue, in request order; those whose
    queue is gone are failed."""
    for entry in await svc.deps.store.callbacks(state="pending"):
        if svc.spec(entry.queue) is None:
            log.warning("callback %s: queue %s is gone", entry.id, entry.queue)
            save(svc, entry, "failed")
            continue
        waited = (svc.wall() - entry.requested).total_seconds()
        svc.callbacks[entry.id] = CallbackCall(svc.deps, entry)
        svc.feed(lambda model, now, e=entry, w=waited: model.restore_callback(  # type: ignore[misc]
            e.id, e.queue, now, number=e.number, priority=e.priority, waited=w,
            attempts=e.attempts, position=e.position))
    if svc.callbacks:
        log.info("queue callbacks: %d pending callbacks back in their queues", len(svc.callbacks))


def gone(svc: AcdService, callback_id: str) -> None:
    """The model gave a callback up (CALLBACKFAILED: retries spent, its queue removed)."""
    cb = svc.callbacks.get(callback_id)
    if cb is not None:
        save(svc, cb.entry, "failed")


async def attempt(svc: AcdService, cb: CallbackCall, connect: Connect) -> None:
    """An agent answered the callback's offer: dial the customer and bridge them."""
    run = svc.offers.pop(connect.offer_id, None)
    agent_leg = run.winner if run is not None else None
    if run is not None:
        await run.close()
    cb_id, deps = cb.entry.id, svc.deps
    attempts = cb.entry.attempts + 1
    cb.entry = replace(cb.entry, attempts=attempts)
    if agent_leg is None or agent_leg.ended.is_set():
        _unanswered(svc, cb, "agent_gone")
        return
    spec = svc.spec(cb.entry.queue)
    if spec is not None and spec.whisper:  # e.g. "a callback": played to the agent alone
        with contextlib.suppress(ValueError):
            await agent_leg.media.play(deps.sounds.load(spec.whisper, "en"))
    agent_leg.media.set_background(ringback_eu())
    started = datetime.now(UTC)
    try:
        customer, status = await _dial_customer(cb, agent_leg)
    except asyncio.CancelledError:  # the switch stops
        await release(deps, agent_leg)
        raise
    agent_leg.media.set_background(None)
    if customer is None:
        cb.add_leg(leg_record(agent_leg, DialResult("answered", 200), role="agent"))
        await release(deps, agent_leg)
        _unanswered(svc, cb, status)
        await _write_cdr(svc, cb, connect.agent, started, None, status)
        return
    svc.feed(lambda model, now: model.callback_connected(cb_id, now))
    save(svc, cb.entry, "connected")
    answered = datetime.now(UTC)
    bridge = Bridge(agent_leg.media, customer.media)
    bridge.start()
    by = "agent"
    try:
        ends = [asyncio.ensure_future(agent_leg.ended.wait()),
                asyncio.ensure_future(customer.ended.wait())]
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for e in ends:
                e.cancel()
        by = "agent" if agent_leg.ended.is_set() else "caller"  # caller: the customer
    finally:
        bridge.stop()
        talk = round((datetime.now(UTC) - answered).total_seconds(), 3)
        cb.add_leg(leg_record(agent_leg, DialResult("answered", 200), role="agent",
                              talk_seconds=talk))
        cb.add_leg(leg_record(customer, DialResult("answered", 200), role="customer",
                              answer=answered.isoformat(), talk_seconds=talk))
        await release(deps, agent_leg)
        await release(deps, customer)
        svc.feed(lambda model, now: model.call_ended(cb_id, now, by))  # type: ignore[arg-type]
        await _write_cdr(svc, cb, connect.agent, started, answered,
                         "callee" if by == "caller" else "caller")


def _unanswered(svc: AcdService, cb: CallbackCall, status: str) -> None:
    cb_id = cb.entry.id
    svc.feed(lambda model, now: model.callback_unanswered(cb_id, now, status))
    if cb_id not in svc.callbacks:  # CALLBACKFAILED: the service saved it as failed
        return
    save(svc, cb.entry)  # its attempts; back in line
    svc.callbacks[cb_id] = CallbackCall(svc.deps, cb.entry)  # a fresh one for the next attempt


async def _dial_customer(cb: CallbackCall, agent_leg: OutboundLeg
                         ) -> tuple[OutboundLeg | None, str]:
    """Ring the customer's phones (or trunk); the answered leg, or (None, why not).  The
    agent hanging up meanwhile cancels it (`agent_gone`)."""
    deps, number = cb.deps, cb.entry.number
    try:
        targets = await resolve_label(deps, number)
    except DialRefused as refused:
        cb.add_leg({"target": number, "disposition": "failed", "sip_code": refused.code,
                    "reason": refused.reason, "role": "customer"})
        return None, "failed"
    legs: list[OutboundLeg] = []
    for t in targets:
        media = await MediaSession.open(deps.media_host, deps.ports, deps.pacer)
        sdp = build_offer(deps.media_host, media.local_port, secrets.randbits(31), 1)
        leg = OutboundLeg(deps.legs, t, media, sdp,
                          caller=t.from_user or agent_leg.target.label,
                          caller_name=cb.entry.queue, max_forwards=69)
        legs.append(leg)
        leg.start()
    winner: OutboundLeg | None = None
    deadline = time.monotonic() + CUSTOMER_RING
    pending: set[asyncio.Future[Any]] = {leg.result for leg in legs}
    agent_gone = asyncio.ensure_future(agent_leg.ended.wait())
    try:
        while pending and winner is None and not agent_leg.ended.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done, pending = await asyncio.wait(pending | {agent_gone}, timeout=left,
                                               return_when=asyncio.FIRST_COMPLETED)
            pending.discard(agent_gone)
            winner = next((leg for leg in legs if leg.result in done
                           and leg.result.result().status == "answered"), None)
    except asyncio.CancelledError:
        for leg in legs:
            await release(deps, leg)
        raise
    finally:
        agent_gone.cancel()
    results = [leg.result.result() if leg.result.done() else
               DialResult("noanswer", None, "no answer in time") for leg in legs]
    for leg, result in zip(legs, results, strict=True):
        if leg is not winner:
            cb.add_leg(leg_record(leg, result, role="customer"))
            await release(deps, leg)
    if winner is not None and agent_leg.ended.is_set():
        await release(deps, winner)
        return None, "agent_gone"
    if winner is not None:
        return winner, "answered"
    if agent_leg.ended.is_set():
        return None, "agent_gone"
    best = next((r for r in results if r.status == "busy"), results[-1] if results else None)
    return None, best.status if best is not None else "failed"


async def _write_cdr(svc: AcdService, cb: CallbackCall, agent: str, started: datetime,
                     answered: datetime | None, hangup_by: str) -> None:
    """One CDR per attempt: direction outbound, from the agent to the customer."""
    e, store = cb.entry, svc.deps.store
    call_id = f"{e.id}-{e.attempts}"
    disposition: Disposition = "answered" if answered is not None else (
        "busy" if any(x.get("disposition") == "busy" for x in cb.legs) else "no answer")
    try:
        await store.cdr_open(CdrStart(call_id=call_id, sip_call_id="", start=started,
                                      caller=agent, called=e.number,
                                      caller_name=f"[{e.queue}] callback",
                                      route=f"callback:{e.queue}", node=svc.deps.config.node))
        if answered is not None:
            await store.cdr_update(call_id, answer=answered)
        for number, leg in enumerate(cb.legs, start=1):
            await store.cdr_leg(call_id, number, leg)
        await store.cdr_close(call_id, CdrEnd(
            end=datetime.now(UTC), disposition=disposition,
            hangup_by="callee" if hangup_by == "callee" else "caller",
            hangup_cause=f"callback attempt {e.attempts}",
            vars={"direction": "outbound", "callback": e.number, "queue": e.queue,
                  "callback_id": e.id, "agent": agent}))
    except Exception:  # logged; the callback goes on
        log.exception("callback %s: CDR not written", e.id)
    cb.legs = []
