"""The caller's side of a queue: hold music, announcements, the exit key, then the agent.

`wait_in_queue` is the `queue` action.  The caller hears the queue's hold music while the model
looks for an agent; every `Announce` plays the position and estimated wait over it (in the
call's language, `pbxcore.verbs.say.announcement`); a key of the action's `exit_key` leaves the
queue.  The wait ends with the model's `Leave` — the script's `queue` event — or its `Connect`:
the agent's leg is taken from the offer, the whisper is played to the agent alone, and caller
and agent are bridged by the same code as `dial` (recording, hold, REFER transfer).  When the
caller hangs up meanwhile, the call's task is cancelled and the model hears `abandon` (or, once
connected, that the caller ended the call).  Every event after the queue carries PBX_QUEUE,
PBX_QUEUE_WAIT, PBX_QUEUE_POSITION and PBX_AGENT (`Call.carry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pbxcore.acd import callbacks
from pbxcore.acd.model import Announce, Connect, EndedBy, Leave
from pbxcore.acd.offers import ModelInput
from pbxcore.acd.spec import QueueSpec
from pbxcore.call.dialer import bridge_call
from pbxcore.call.outbound import OutboundLeg
from pbxcore.script.events import queue_fields
from pbxcore.store.journal import QueueSegment
from pbxcore.verbs.base import Outcome
from pbxcore.verbs.say import announcement

if TYPE_CHECKING:
    from pbxcore.acd.service import AcdService
    from pbxcore.call.call import Call

log = logging.getLogger("pbxcore.acd")


@dataclass(frozen=True)
class CallbackKey:
    """The caller pressed the queue's callback key."""

    key: str


@dataclass
class Waiter:
    """A caller waiting in a queue: where the model's decisions for it are delivered."""

    call: Call
    spec: QueueSpec
    priority: int = 0
    inbox: asyncio.Queue[Announce | Connect | Leave | str | CallbackKey] = field(
        default_factory=asyncio.Queue)  # str: an exit key the caller pressed
    position: int = 0  # on entry (the model's ENTERQUEUE row)
    number: int = 1  # the call's Nth queue visit (its CDR queue segment)
    entered: datetime = field(default_factory=lambda: datetime.now(UTC))

    def segment(self, *, wait: float | None = None, agent: str | None = None,
                outcome: str | None = None) -> None:
        """Write (or rewrite) this visit's CDR queue segment, behind the call's CDR writes."""
        segment = QueueSegment(number=self.number, queue=self.spec.name, entered=self.entered,
                               position=self.position, priority=self.priority,
                               wait=None if wait is None else round(wait, 3), agent=agent,
                               outcome=outcome)
        store, call_id = self.call.deps.store, self.call.info.call_id
        self.call.persist(lambda: store.cdr_queue(call_id, segment))


async def wait_in_queue(acd: AcdService, call: Call, spec: QueueSpec, *, priority: int,
                        timeout: float | None, exit_key: str, announce: Sequence[str] | None,
                        whisper: str | None) -> Outcome | None:
    """Wait in the queue `spec`; None when bridged to an agent (the call is over), else the
    `queue` event's Outcome (timeout, full, empty, exit_key, callback)."""
    queue, call_id = spec.name, call.info.call_id
    parts = tuple(spec.announce if announce is None else announce)
    call.queue_visits += 1
    waiter = Waiter(call, spec, priority, number=call.queue_visits)
    acd.waiters[call_id] = waiter
    hold = _hold_music(call, spec.hold_music)
    call.media.set_background(hold)
    callback_key = spec.callback_key or ""
    keys = exit_key or callback_key
    pump = asyncio.ensure_future(_keys(call, waiter, exit_key, callback_key)) if keys else None
    callback_number = ""
    playing: asyncio.Future[None] | None = None
    decision: Connect | Leave | None = None
    key = ""
    joined = False
    try:
        acd.feed(lambda model, now: model.join(call_id, queue, now, priority=priority,
                                               timeout=timeout, announce=bool(parts),
                                               caller=call.info.caller))
        joined = not waiter.inbox.qsize()  # else refused at the door (full, empty)
        if joined:  # the CDR's queue segment opens
            waiter.segment()
        while decision is None:
            item = await waiter.inbox.get()
            if isinstance(item, CallbackKey):
                number = call.info.caller
                if callbacks.request(acd, call_id, spec, number, priority,
                                     waiter.position) is None:
                    call.note("note", {"queue": queue, "callback_refused": number})
                else:
                    callback_number = number
                if not waiter.inbox.qsize():  # refused: keep listening for keys
                    pump = asyncio.ensure_future(_keys(call, waiter, exit_key, callback_key))
            elif isinstance(item, str):
                key = item
                acd.feed(_exit_key(call_id, key))
            elif isinstance(item, Announce):
                if playing is not None:
                    playing.cancel()
                playing = asyncio.ensure_future(_announce(call, item, parts, hold,
                                                           spec.callback_key))
            elif isinstance(item, Connect | Leave):
                decision = item
    except asyncio.CancelledError:
        _abandoned(acd, waiter)
        waited = (datetime.now(UTC) - waiter.entered).total_seconds()
        waiter.segment(wait=waited, outcome="shutdown" if call.hangup_by == "shutdown"
                       else "abandoned")
        raise
    finally:
        acd.waiters.pop(call_id, None)
        tasks = [t for t in (pump, playing) if t is not None]
        for task in tasks:
            task.cancel()
        # Let an announcement put the music back before the caller's next step takes over.
        await asyncio.gather(*tasks, return_exceptions=True)
    if isinstance(decision, Leave):
        call.media.set_background(None)
        # PBX_QUEUE_POSITION 0: it never joined (docs/protocol.md)
        position = decision.position if joined else 0
        fields = queue_fields(queue, wait=decision.wait, position=position, agent=None)
        call.carry(fields)
        call.note("note", {"queue": queue, "left": decision.result, "wait": decision.wait})
        waiter.position = position
        waiter.segment(wait=decision.wait, outcome=decision.result)
        extra = dict(fields)
        if decision.result == "callback":  # PBX_CALLBACK_NUMBER: the number to be called
            extra["callback_number"] = callback_number
        return Outcome("queue", result=decision.result,
                       digits=key if decision.result == "exit_key" else None, extra=extra)
    await _connected(acd, waiter, decision, whisper or spec.whisper)
    return None


async def _connected(acd: AcdService, waiter: Waiter, connect: Connect,
                     whisper: str | None) -> None:
    call = waiter.call
    run = acd.offers.pop(connect.offer_id, None)
    leg: OutboundLeg | None = run.winner if run is not None else None
    if run is not None:
        await run.close()  # the other agents' legs (the model cancelled them already)
    call_id = call.info.call_id
    call.carry(queue_fields(connect.queue, wait=connect.wait, position=connect.position,
                            agent=connect.agent))
    call.note("note", {"queue": connect.queue, "agent": connect.agent, "wait": connect.wait})
    waiter.position = connect.position
    waiter.segment(wait=connect.wait, agent=connect.agent, outcome="answered")
    if leg is None or leg.ended.is_set():  # the agent hung up as it answered
        acd.feed(lambda model, now: model.call_ended(call_id, now, "agent"))
        call.media.set_background(None)
        await call.hangup()
        return
    if whisper:
        with contextlib.suppress(ValueError):  # a missing prompt: no whisper, not no call
            await leg.media.play(call.sound(whisper))  # the caller still hears hold music
    transferred: list[str] = []

    def on_transfer(target: str) -> None:
        transferred.append(target)
        acd.feed(lambda model, now: model.transfer(call_id, now, target))

    try:
        await bridge_call(call, leg, record=call.record_calls, on_transfer=on_transfer)
    finally:
        if not transferred:
            by: EndedBy = "agent" if call.hangup_by == "callee" else "caller"
            acd.feed(lambda model, now: model.call_ended(call_id, now, by))


def _exit_key(call_id: str, key: str) -> ModelInput:
    return lambda model, now: model.leave(call_id, now, "exit_key", key=key)


def _abandoned(acd: AcdService, waiter: Waiter) -> None:
    """The caller hung up while waiting: ABANDON; a Connect already on its way is undone."""
    call_id = waiter.call.info.call_id
    acd.feed(lambda model, now: model.leave(call_id, now, "abandon"))
    while not waiter.inbox.empty():
        item = waiter.inbox.get_nowait()
        if isinstance(item, Connect):
            run = acd.offers.pop(item.offer_id, None)
            if run is not None and run.winner is not None:
                run.winner.hangup()
                acd._spawn(run.close())
            acd.feed(lambda model, now: model.call_ended(call_id, now, "caller"))


async def _keys(call: Call, waiter: Waiter, exit_key: str, callback_key: str) -> None:
    """Hand the exit keys (and the queue's callback key) the caller presses to the waiting
    loop.  An exit key of the action wins over the queue's callback key."""
    call.media.flush_digits()
    while True:
        digit = await call.media.digits.get()
        if digit in exit_key:
            waiter.inbox.put_nowait(digit)
            return
        if callback_key and digit == callback_key:
            waiter.inbox.put_nowait(CallbackKey(digit))
            return


async def _announce(call: Call, item: Announce, parts: Sequence[str], hold: bytes | None,
                    callback_key: str | None = None) -> None:
    names = announcement(item.position, item.estimated_wait, call.language, parts,
                         callback_key)
    try:
        # Prompt by prompt, never joined: each prompt's PCM is the sound library's own object,
        # so its G.711 encoding is a cache hit (media.session.encode_cached), while a joined
        # announcement would be new audio to encode on the event loop every time.
        prompts = [call.sound(n) for n in names]
    except ValueError as exc:  # a prompt missing for this language: keep the music
        call.note("error", {"announce": names, "error": str(exc)})
        return
    call.media.set_background(None)
    try:
        for pcm in prompts:
            await call.media.play(pcm)
    finally:
        call.media.stop_playing()
        call.media.set_background(hold)


def _hold_music(call: Call, name: str) -> bytes | None:
    try:
        return call.sound(name)
    except ValueError:
        return None
