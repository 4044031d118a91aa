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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbxcore.call.leg import InboundLeg
from pbxcore.config import Config, Route
from pbxcore.media.bridge import Bridge
from pbxcore.media.pacer import Pacer
from pbxcore.media.ports import PortAllocator
from pbxcore.media.session import MediaSession
from pbxcore.media.sounds import SoundLibrary, confined
from pbxcore.script.events import HistoryEntry
from pbxcore.script.transports import Transports
from pbxcore.sip.sdp import AudioAnswer, build_answer
from pbxcore.store.base import Store, TraceEntry
from pbxcore.transport.sip_endpoint import SipEndpoint
from pbxcore.verbs.base import Outcome

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


class Call:
    """An inbound call being handled by its route's scripts."""

    def __init__(self, deps: CallDeps, leg: InboundLeg, info: CallInfo, route: Route,
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
        self._trace: list[TraceEntry] = []
        self._writes: asyncio.Future[None] | None = None  # the tail of the store-write chain
        self._seq = 0

    # -- CallControl --------------------------------------------------------------------------

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def media(self) -> MediaSession:
        if self._media is None:
            raise RuntimeError("media used before the call was answered")
        return self._media

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
        self.persist(lambda: self.deps.store.cdr_update(self.info.call_id, answer=answered))
        self.note("sip", {"sent": "200 OK", "rtp_port": media.local_port})

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
        value = self.leg.invite.max_forwards
        return 70 if value is None else value

    def add_leg(self, data: dict[str, Any]) -> None:
        self.legs.append(data)
        self.note("note", {"leg": len(self.legs), **data})

    async def dial(self, targets: Sequence[str], *, mode: str, timeout: float,
                   caller_id: str | None, ringback: str, record: bool) -> Outcome | None:
        from pbxcore.call.dialer import dial  # dialer imports Call for typing only

        return await dial(self, targets, mode=mode, timeout=timeout, caller_id=caller_id,
                          ringback=ringback, record=record or self.record_calls)

    # -- lifecycle ----------------------------------------------------------------------------

    def remote_hangup(self, by: str, cause: str, code: int | None = None) -> None:
        """The far end ended the call (BYE, CANCEL, no ACK) or the switch is shutting down."""
        if by == "shutdown" and self.answered:
            self.leg.bye()
        elif by == "shutdown":
            self.leg.reject(503)
        self._end(by, cause, code)

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
        if self.hangup_by == "caller":
            return "abandoned"
        if self.rejected_with == 486:
            return "busy"
        if self.rejected_with is not None:
            return "rejected"
        return "failed"
