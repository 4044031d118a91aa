"""The voicemail service: room in a box, saving a message, the notify program, the lamps.

`Call.voicemail_open` / `Call.voicemail_save` (the `voicemail` verb) land here.  A message is a
WAV under ``recordings/voicemail/BOX/`` and one row of the store's voicemail index.  Saving it
runs the box's notify program with the `voicemail_left` event (the script contract: PBX_* env
and JSON on stdin, through the process transport like the ACD's alert program; its stdout is
ignored: it sends the mail, posts to a CRM) in the background, and tells the MWI service
(pbxcore/call/mwi.py) that the box changed so the owners' lamps follow.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbxcore.script.events import Event
from pbxcore.store.voicemail import VoicemailMessage
from pbxcore.verbs.base import VoicemailSlot

if TYPE_CHECKING:
    from pbxcore.call.call import Call, CallDeps

log = logging.getLogger("pbxcore.voicemail")

NOTIFY_TIMEOUT = 30.0  # seconds a notify program may take (it may be sending mail)
VOICEMAIL_DIR = "voicemail"  # under the recordings directory


def message_path(recordings: Path, box: str, call_id: str, now: datetime) -> tuple[Path, str]:
    """Where a new message of `box` goes: (absolute path, path relative to recordings)."""
    rel = f"{VOICEMAIL_DIR}/{box}/{now.strftime('%Y%m%d-%H%M%S')}-{call_id}.wav"
    path = recordings / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, rel


class VoicemailService:
    """Shared by every call (CallDeps.voicemail); `mwi` is the lamp service, if any."""

    def __init__(self, deps: CallDeps) -> None:
        self.deps = deps
        self.mwi: Any = None  # pbxcore.call.mwi.Mwi, set by the switch
        self._tasks: set[asyncio.Task[None]] = set()

    async def open_slot(self, call: Call, box_name: str) -> VoicemailSlot | None:
        box = self.deps.config.voicemail_box(box_name)
        if box is None:
            why = f"voicemail {box_name}: no such [[voicemail]] box"
            call.note("error", {"voicemail": box_name, "error": why})
            call.script_errors.append(why)
            return None
        new, heard = await self.deps.store.voicemail_counts(box.box)
        if new + heard >= box.max_messages:
            call.note("note", {"voicemail": box.box, "note": f"full ({new + heard} messages)"})
            return None
        path, rel = message_path(self.deps.config.paths.recordings, box.box,
                                 call.info.call_id, datetime.now(UTC))
        return VoicemailSlot(box.box, box.greeting, box.max_seconds, box.min_seconds, path, rel)

    async def save(self, call: Call, slot: VoicemailSlot, seconds: float) -> None:
        info = call.info
        message = await self.deps.store.voicemail_add(VoicemailMessage(
            box=slot.box, time=datetime.now(UTC), seconds=seconds, recording=slot.name,
            caller=info.caller, caller_name=info.caller_name, call_id=info.call_id,
            node=self.deps.config.node or None))
        call.recordings.append(slot.name)
        call.note("note", {"voicemail": slot.box, "recording": slot.name,
                           "seconds": round(seconds, 2), "message": message.id})
        self.spawn(self._notify(message))
        self.changed(slot.box)

    def changed(self, box: str) -> None:
        """A box's counts changed (message left, heard, deleted): the lamps follow."""
        if self.mwi is not None:
            self.spawn(self.mwi.box_changed(box))

    def spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, m: VoicemailMessage) -> None:
        box = self.deps.config.voicemail_box(m.box)
        if box is None or box.notify is None:
            return
        new, heard = await self.deps.store.voicemail_counts(m.box)
        event = Event(name="voicemail_left", call_id=m.call_id, caller=m.caller,
                      caller_name=m.caller_name, recording=m.recording, extra={
                          "voicemail_box": m.box, "voicemail_id": str(m.id),
                          "recording_seconds": f"{m.seconds:.2f}", "voicemail_email": box.email,
                          "voicemail_new": str(new), "voicemail_heard": str(heard),
                          "voicemail_time": m.time.isoformat(timespec="seconds")})
        result = await self.deps.transports.process.run(Path(box.notify), event, env={},
                                                        timeout=NOTIFY_TIMEOUT)
        if not result.ok:
            log.error("voicemail %s: notify program %s failed: %s", m.box,
                      Path(box.notify).name, result.error)

    async def drain(self) -> None:
        """Wait for running notify programs (shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=NOTIFY_TIMEOUT)
