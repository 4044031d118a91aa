"""What a verb may do to a call, and what it returns.

Each action of the script contract has one module in this package with one `async def execute(call,
action)`.  Verbs see the call only through `CallControl` (a small Protocol the call layer
implements), so they are testable with an in-memory fake and know nothing of SIP.  A verb is
cancellable at every await: when the caller hangs up, the running verb is cancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Outcome:
    """The result of an action that ends the list; becomes the script's next event."""

    event: str  # next event name: gather, record, redirect, dial, queue
    result: str = ""  # PBX_RESULT
    digits: str | None = None  # PBX_DIGITS (gather)
    recording: str | None = None  # PBX_RECORDING (record), relative to the recordings dir
    extra: Mapping[str, str] = field(default_factory=dict)  # more PBX_* fields
    script: Path | None = None  # goto: the script that handles the next event


@dataclass(frozen=True)
class VoicemailSlot:
    """Room for one message in a box (CallControl.voicemail_open): where it goes, its bounds."""

    box: str
    greeting: str  # the box's greeting prompt
    max_seconds: float  # the box's default max=
    min_seconds: float  # shorter is too_short and not kept
    path: Path  # absolute path of the WAV to write
    name: str  # the same, relative to the recordings directory (PBX_RECORDING)


class MediaControl(Protocol):
    """The part of a media session verbs use (pbxcore.media.session.MediaSession)."""

    async def play(self, pcm16: bytes) -> None: ...
    def flush_digits(self) -> None: ...
    def start_recording(self, path: Path) -> None: ...
    async def stop_recording(self) -> float: ...
    def seconds_since_voice(self) -> float: ...

    @property
    def digits(self) -> Any: ...  # asyncio.Queue[str]


class CallControl(Protocol):
    """The call as verbs see it."""

    language: str
    vars: dict[str, str]
    record_calls: bool

    @property
    def answered(self) -> bool: ...
    @property
    def media(self) -> MediaControl: ...

    async def answer(self) -> None: ...
    async def ring(self) -> None: ...
    async def reject(self, code: int) -> None: ...
    async def hangup(self) -> None: ...
    def sound(self, name: str) -> bytes: ...  # PCM of a prompt (or recording:...), cached
    async def speak(self, text: str, voice: str | None) -> bytes: ...  # TTS PCM, cached
    def new_recording(self) -> tuple[Path, str]: ...  # absolute path, name relative to recordings
    def script_path(self, name: str) -> Path: ...
    def note(self, kind: str, data: Mapping[str, Any]) -> None: ...  # into the call's trace
    def interrupted(self, outcome: Outcome) -> None: ...  # the outcome cut short by a hangup
    async def dial(self, targets: Sequence[str], *, mode: str, timeout: float,
                   caller_id: str | None, ringback: str, record: bool) -> Outcome | None: ...
    async def enqueue(self, queue: str, *, priority: int, timeout: float | None, exit_key: str,
                      announce: tuple[str, ...] | None, whisper: str | None) -> Outcome | None:
        """Wait in `queue` (a [[queues]] name): None once bridged to an agent (the call is
        over, like dial), else the `queue` Outcome (result in acd.spec.QUEUE_RESULTS).
        exit_key: keys that leave ("" none); announce/whisper None: the queue's own."""
    async def agent_control(self, op: str, extension: str, *, queue: str | None,
                            reason: str | None) -> None:
        """login|logout|pause|unpause an agent; ValueError when the route does not allow it."""
    async def conference(self, room: str, *, moderator: bool, muted: bool,
                         max_members: int | None, pin: str | None, end: bool) -> Outcome | None:
        """Join conference `room`: None once in it (the call is over when it leaves: hangup,
        kick, room ended), else the `conference` Outcome (full, bad_pin)."""
    async def voicemail_open(self, box: str) -> VoicemailSlot | None:
        """Room for a message in `box`, or None when it is full or no [[voicemail]] box."""
    def voicemail_save(self, slot: VoicemailSlot, seconds: float) -> Awaitable[None]:
        """Start indexing the message (then the box's notify program, the lamps), as work the
        call waits for before its last events even when the caller hangs up now."""
