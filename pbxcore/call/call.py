"""One call as the verbs see it: caller data, variables, media, trace and CDR bookkeeping.

`Call` implements `pbxcore.verbs.base.CallControl` on top of an `InboundLeg` (SIP) and a
`MediaSession` (RTP, opened at answer time so the port is only held by answered calls).  It owns
the facts the CDR needs (answer time, who hung up, why) and buffers trace entries, which the engine
flushes to the store between steps so a verb never waits on the database.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from pbxcore.acd.api import AcdControl, AgentError, AgentOp
from pbxcore.call.conference import Conferences
from pbxcore.call.leg import CallLeg
from pbxcore.call.stats import SwitchStats
from pbxcore.config import Config, Route
from pbxcore.media.bridge import Bridge
from pbxcore.media.pacer import Pacer
from pbxcore.media.ports import PortAllocator
from pbxcore.media.session import MediaSession
from pbxcore.media.sounds import SoundLibrary, confined
from pbxcore.media.tts import Tts
from pbxcore.media.wav import read_wav
from pbxcore.script.actions import AGENT_OPS
from pbxcore.script.events import HistoryEntry, queue_fields
from pbxcore.script.transports import Transports
from pbxcore.sip.sdp import AudioAnswer, build_answer
from pbxcore.store.base import CdrEnd, CdrStart, Store, TraceEntry
from pbxcore.transport.sip_endpoint import SipEndpoint
from pbxcore.verbs.base import Outcome, VoicemailSlot

log = logging.getLogger("pbxcore.call")

@dataclass
class CallDeps:
    """What every call shares: built once by the server (the composition root)."""

    config: Config
    store: Store
    endpoint: SipEndpoint
    ports: PortAllocator
    pacer: Pacer
    sounds: SoundLibrary
    media_host: str
    transports: Transports = field(default_factory=Transports)
    legs: Any = None  # the switch, as the LegHost of dialled legs (set by Switch)
    registrar: Any = None  # the switch's Registrar (set by Switch)
    acd: AcdControl | None = None  # the ACD service; None: `queue` answers `empty`
    stats: SwitchStats = field(default_factory=SwitchStats)  # pbx top and metrics counters
    tts: Any = None  # the `say text` renderer (media/tts.Tts), made at the first use
    conferences: Conferences = field(default_factory=Conferences)  # the conference rooms
    voicemail: Any = None  # pbxcore.call.voicemail.VoicemailService (set by Switch)


@dataclass
class CallInfo:
    """Who called whom, fixed when the INVITE arrives."""

    call_id: str
    sip_call_id: str
    caller: str
    caller_name: str
    called: str
    headers: Mapping[str, str] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    user: str | None = None  # the digest-authenticated extension, if the caller is one


class Call:
    """An inbound call being handled by its route's scripts."""

    def __init__(self, deps: CallDeps, leg: CallLeg, info: CallInfo, route: Route,
                 offer: AudioAnswer) -> None:
        self.deps = deps
        self.leg = leg
        self.info = info
        self.route = route
        self.offer = offer
        self.language = route.language
        self.script = route.script  # the script handling the call now (goto changes it)
        self.vars: dict[str, str] = {}
        self._media: MediaSession | None = None
        # Our SDP o= line (RFC 3264 §8): one session id for the call, the version one higher
        # for every SDP we send after the first (the answers to re-INVITEs).
        self.sdp_session = secrets.randbits(31)
        self.sdp_version = 1
        self.answered_at: datetime | None = None
        self.ended = asyncio.Event()  # set when the call is over on the wire
        self.hangup_by: str | None = None
        self.hangup_cause = ""
        self.hangup_code: int | None = None
        self.rejected_with: int | None = None
        self.recordings: list[str] = []
        self.script_errors: list[str] = []
        self.history: list[HistoryEntry] = []  # earlier events, for the JSON "history"
        self.pending: Outcome | None = None  # an outcome the hangup cut short (record)
        self.actor = "script"  # whose actions run now: "switch" while the fallback runs
        self.bridge: Bridge | None = None  # set while connected to a dialled leg
        self.talk_seconds: float | None = None
        self.record_calls = False  # record_call start: record the next bridge
        self.legs: list[dict[str, Any]] = []  # dialled legs, for the CDR
        self.background: list[asyncio.Future[Any]] = []  # e.g. recordings being written
        self.transfers: list[tuple[str, str]] = []  # (who transferred, to where)
        # Replaces the script loop for calls the switch answers itself (feature codes).
        self.flow: Callable[[Call], Coroutine[Any, Any, None]] | None = None
        self.queue_visits = 0  # queue actions so far (numbers the CDR's queue segments)
        self.carried: dict[str, str] = {}  # event fields every later event carries (PBX_QUEUE*)
        # What the call does now, for `pbx calls`: "ringing", "in script", "playing",
        # "dialling", "bridged", "in queue", ...; the detail names the prompt, target or agent.
        self.activity = "ringing"
        self.activity_detail = ""
        self._trace: list[TraceEntry] = []
        self._writes: asyncio.Future[None] | None = None  # the tail of the store-write chain
        self._cdr_start: CdrStart | None = None
        self._cdr_written = False  # cdr_open committed: CDR writes may follow
        self._seq = 0
        self.origin_status: str | None = None  # originated, FROM did not answer: its disposition

    # -- CallControl --------------------------------------------------------------------------

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def media(self) -> MediaSession:
        if self._media is None:
            raise RuntimeError("media used before the call was answered")
        return self._media

    @property
    def rtp_sent(self) -> int:
        """RTP packets this call's media sent so far (0 before answer)."""
        return self._media.sent_packets if self._media is not None else 0

    async def answer(self) -> None:
        if self.answered or self.ended.is_set():
            return
        media = await MediaSession.open(self.deps.media_host, self.deps.ports, self.deps.pacer)
        media.configure(self.offer)
        self._media = media
        sdp = build_answer(self.offer, local_host=self.deps.media_host,
                           local_port=media.local_port, session_id=self.sdp_session,
                           version=self.sdp_version)
        self.leg.answer(sdp)
        self.answered_at = answered = datetime.now(UTC)
        self.persist_cdr(lambda: self.deps.store.cdr_update(self.info.call_id, answer=answered))
        self.note("sip", {"sent": "200 OK", "rtp_port": media.local_port})

    def adopt_media(self, media: MediaSession) -> None:
        """An originated call: its first party answered our INVITE, so the media is that leg's
        (already negotiated) and the call counts as answered from now on."""
        self._media = media
        self.answered_at = answered = datetime.now(UTC)
        self.persist_cdr(lambda: self.deps.store.cdr_update(self.info.call_id, answer=answered))

    async def ring(self) -> None:
        self.leg.ring()

    async def reject(self, code: int) -> None:
        if self.answered:
            await self.hangup()
            return
        self.leg.reject(code)
        self.rejected_with = code
        self._end(self.actor, f"rejected with {code}", code)

    async def hangup(self) -> None:
        if self.ended.is_set():
            return
        if self.answered:
            self.leg.bye()
            self._end(self.actor, "hangup action", None)
        else:
            # Hanging up an unanswered call: 480 is what the caller's phone shows as "unavailable".
            self.leg.reject(480)
            self.rejected_with = 480
            self._end(self.actor, "hangup before answer", 480)

    def sound(self, name: str) -> bytes:
        return self.deps.sounds.load(name, self.language)

    async def speak(self, text: str, voice: str | None) -> bytes:
        """`say text`: the PCM of `text` in the call's language, rendered by espeak-ng once and
        cached (media/tts.py); the caller hears hold music, not silence, while it renders."""
        if self.deps.tts is None:
            self.deps.tts = Tts(self.deps.config.paths.recordings / "tts")
        tts: Tts = self.deps.tts
        path = tts.cached(text, self.language, voice)
        if path is None:
            music = self.hold_music() if self.answered else None
            if music is not None:
                self.media.set_background(music)
            try:
                path = await tts.render(text, self.language, voice)
            finally:
                if music is not None and not self.ended.is_set():
                    self.media.set_background(None)
            self.note("note", {"tts": "rendered", "file": path.name})
        return read_wav(path)

    def hold_music(self) -> bytes | None:
        """The route's hold music (default `moh`), or None when there is no such prompt."""
        try:
            return self.sound(self.route.hold_music or "moh")
        except ValueError:
            return None

    def new_recording(self) -> tuple[Path, str]:
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        rel = f"{day}/{self.info.call_id}-{len(self.recordings) + 1}.wav"
        path = self.deps.config.paths.recordings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.recordings.append(rel)
        return path, rel

    def script_path(self, name: str) -> Path:
        return confined(self.deps.config.paths.scripts, name)  # a SoundError is a ValueError

    def note(self, kind: str, data: Mapping[str, Any]) -> None:
        self._seq += 1
        self._trace.append(TraceEntry(self._seq, datetime.now(UTC), kind, dict(data)))  # type: ignore[arg-type]

    def interrupted(self, outcome: Outcome) -> None:
        self.pending = outcome

    @property
    def max_forwards(self) -> int:
        """The INVITE's Max-Forwards (RFC 3261 §8.1.1.6), for deriving our legs' value."""
        invite = self.leg.invite  # None for a call the switch originated
        value = invite.max_forwards if invite is not None else None
        return 70 if value is None else value

    def add_leg(self, data: dict[str, Any]) -> None:
        self.legs.append(data)
        self.note("note", {"leg": len(self.legs), **data})

    async def dial(self, targets: Sequence[str], *, mode: str, timeout: float,
                   caller_id: str | None, ringback: str, record: bool) -> Outcome | None:
        from pbxcore.call.dialer import dial  # dialer imports Call for typing only

        return await dial(self, targets, mode=mode, timeout=timeout, caller_id=caller_id,
                          ringback=ringback, record=record or self.record_calls)

    def carry(self, fields: Mapping[str, str]) -> None:
        """Fields every later event of this call carries (the queue's QUEUE_FIELDS)."""
        self.carried.update(fields)

    async def enqueue(self, queue: str, *, priority: int, timeout: float | None, exit_key: str,
                      announce: tuple[str, ...] | None, whisper: str | None) -> Outcome | None:
        spec = self.deps.config.queue(queue)
        acd = self.deps.acd
        if spec is None or acd is None:
            # No such queue (a script bug, traced like one) or no service running: the caller
            # is told `empty`, as by a queue nobody is logged in to, so the script's own
            # fallback (voicemail, a callback offer) runs instead of a dropped call.
            why = f"queue {queue}: no such [[queues]] name" if spec is None else "no ACD service"
            self.note("error" if spec is None else "note", {"queue": queue, "note": why})
            if spec is None:
                self.script_errors.append(why)
            fields = queue_fields(queue, wait=0.0, position=0, agent=None)
            self.carry(fields)
            return Outcome("queue", result="empty", extra=fields)
        return await acd.enqueue(self, spec, priority=priority, timeout=timeout,
                                 exit_key=exit_key, announce=announce, whisper=whisper)

    async def agent_control(self, op: str, extension: str, *, queue: str | None,
                            reason: str | None) -> None:
        if op not in AGENT_OPS:
            raise AgentError(f"agent: {op!r} is not one of {', '.join(AGENT_OPS)}")
        if not self.route.agent_control:
            log.warning("call %s: agent %s %s refused: the route has no agent_control",
                        self.info.call_id, op, extension)
            raise AgentError(f"agent {op} {extension}: not allowed on this route "
                             "(set agent_control = true on it)")
        if self.deps.config.user(extension) is None:
            raise AgentError(f"agent {op}: {extension!r} is not a [[users]] extension")
        if queue is not None and self.deps.config.queue(queue) is None:
            raise AgentError(f"agent {op} {extension}: no queue {queue!r} in [[queues]]")
        acd = self.deps.acd
        if acd is None:
            self.note("note", {"agent": op, "extension": extension, "note": "no ACD service"})
            return
        await acd.agent_control(cast(AgentOp, op), extension, queue=queue, reason=reason,
                                via="script")

    async def conference(self, room: str, *, moderator: bool, muted: bool,
                         max_members: int | None, pin: str | None, end: bool) -> Outcome | None:
        from pbxcore.call.conference import join

        return await join(self, room, moderator=moderator, muted=muted,
                          max_members=max_members, pin=pin, end=end)

    async def voicemail_open(self, box: str) -> VoicemailSlot | None:
        return cast(VoicemailSlot | None, await self.deps.voicemail.open_slot(self, box))

    def voicemail_save(self, slot: VoicemailSlot, seconds: float) -> asyncio.Future[None]:
        work: asyncio.Future[None] = asyncio.ensure_future(
            self.deps.voicemail.save(self, slot, seconds))
        self.background.append(work)  # awaited before the last events, even after a hangup
        return work

    # -- lifecycle ----------------------------------------------------------------------------

    def remote_hangup(self, by: str, cause: str, code: int | None = None) -> None:
        """The far end ended the call (BYE, CANCEL, no ACK) or the switch is shutting down."""
        if by == "shutdown" and self.answered:
            self.leg.bye(now=True)  # the process is going away: do not wait for an ACK
        elif by == "shutdown":
            self.leg.reject(503)
        self._end(by, cause, code)

    def doing(self, activity: str, detail: str = "") -> None:
        """Report what the call does now (the engine, the dialer and services call this)."""
        self.activity, self.activity_detail = activity, detail

    def end_by_switch(self, cause: str) -> None:
        """Hang up from outside the script (`pbx hangup`): BYE when answered, 487 before
        (RFC 3261 §9.2: a request ended before its final answer is 487 Request Terminated).
        The engine then runs the hangup event and closes the CDR with hangup_by "switch"."""
        if self.ended.is_set():
            return
        if self.answered:
            self.leg.bye()
            self._end("switch", cause, None)
        else:
            self.leg.reject(487)
            self._end("switch", cause, 487)

    def _end(self, by: str, cause: str, code: int | None) -> None:
        if self.ended.is_set():
            return
        self.hangup_by, self.hangup_cause, self.hangup_code = by, cause, code
        self.note("note", {"hangup_by": by, "cause": cause, "code": code})
        self.ended.set()

    def persist(self, op: Callable[[], Awaitable[Any]]) -> None:
        """Queue a store write behind this call's earlier ones.  The call never waits for the
        database (the 180 and the first script run do not depend on a commit), the writes keep
        their order (the CDR row exists before its trace), and cancelling the call's task
        cannot cut a write in half: the chain is its own task, awaited by `drain_writes`."""
        previous = self._writes

        async def write() -> None:
            if previous is not None:
                await previous
            try:
                await op()
            except Exception:  # a failed write is logged; the call goes on
                log.exception("call %s: store write failed", self.info.call_id)

        self._writes = asyncio.ensure_future(write())

    def open_cdr(self, start: CdrStart) -> None:
        """Queue the CDR's first write. If it fails (database down, locked, full), the call goes
        on: later CDR writes are skipped instead of failing one by one with UnknownCallError,
        and `close_cdr` writes the whole record again at hangup."""
        self._cdr_start = start

        async def write() -> None:
            await self.deps.store.cdr_open(start)
            self._cdr_written = True

        self.persist(write)

    def persist_cdr(self, op: Callable[[], Awaitable[Any]]) -> None:
        """`persist` for a write to the CDR row: skipped while that row could not be written."""
        async def write() -> None:
            if self._cdr_written:
                await op()

        self.persist(write)

    async def close_cdr(self, end: CdrEnd) -> None:
        """Write the dialled legs and close the CDR, after every earlier write. When the CDR's
        first write failed, open it again now (with its answer time) so no call is left without
        a record; only if that fails too is the record lost, and that is logged as an error."""
        await self.drain_writes()
        store, call_id = self.deps.store, self.info.call_id
        if not self._cdr_written and self._cdr_start is not None:
            try:
                if await store.cdr(call_id) is None:  # the first write may have committed
                    await store.cdr_open(self._cdr_start)
                if self.answered_at is not None:
                    await store.cdr_update(call_id, answer=self.answered_at)
                self._cdr_written = True
                log.warning("call %s: CDR written at hangup, its first write had failed", call_id)
            except Exception:
                log.exception("call %s: CDR lost, the store refused it twice", call_id)
                return
        for number, leg in enumerate(self.legs, start=1):
            try:
                await store.cdr_leg(call_id, number, leg)
            except Exception:  # a bad leg must not keep the CDR open
                log.exception("call %s: store write failed (leg %d)", call_id, number)
        await store.cdr_close(call_id, end)

    def flush_trace(self) -> None:
        """Queue the buffered trace entries as one batch (one commit)."""
        if self._trace:
            batch, self._trace = self._trace, []
            self.persist(lambda: self.deps.store.trace_extend(self.info.call_id, batch))

    async def drain_writes(self) -> None:
        if self._writes is not None:
            await asyncio.shield(self._writes)

    async def close_media(self) -> None:
        if self._media is not None:
            await self._media.close()

    def disposition(self) -> str:
        if self.answered or self.bridge is not None:
            return "answered"
        if self.origin_status is not None:  # an originated call whose first party never answered
            return self.origin_status
        if self.hangup_by == "caller":
            return "abandoned"
        if self.rejected_with == 486:
            return "busy"
        if self.rejected_with is not None:
            return "rejected"
        return "failed"
