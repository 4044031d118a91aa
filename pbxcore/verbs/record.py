"""`record`: record what the caller says to a WAV in the recordings directory.

Ends at `max` seconds (result `maxtime`), on the `finish` key (`finishkey`), after `silence`
seconds without voice once the caller has spoken or from the start (`silence`), or when the caller
hangs up (the engine then reports the recording in the hangup event).  The recording is kept in
every case and listed in the CDR; PBX_RECORDING is its path relative to the recordings directory.
"""

from __future__ import annotations

import asyncio
import time

from pbxcore.script.actions import Record
from pbxcore.verbs.base import CallControl, MediaControl, Outcome

POLL = 0.1  # seconds between silence checks: fine enough for a "3 s of silence" rule


async def execute(call: CallControl, action: Record) -> Outcome | None:
    media = call.media
    if action.beep:
        await media.play(call.sound("beep"))
    media.flush_digits()
    path, name = call.new_recording()
    media.start_recording(path)
    result = "maxtime"
    try:
        result = await listen(media, action.max, action.finish, action.silence)
    except asyncio.CancelledError:
        # The caller hung up mid-recording: the message is kept and the script still gets its
        # `record` event (result hangup) before the `hangup` event (docs/protocol.md).
        seconds = await asyncio.shield(media.stop_recording())
        call.interrupted(Outcome("record", result="hangup", recording=name,
                                 extra={"recording_seconds": f"{seconds:.2f}"}))
        raise
    seconds = await asyncio.shield(media.stop_recording())
    call.note("note", {"recording": name, "seconds": round(seconds, 2), "result": result})
    return Outcome("record", result=result, recording=name,
                   extra={"recording_seconds": f"{seconds:.2f}"})


async def listen(media: MediaControl, limit: float, finish: str | None, silence: float) -> str:
    """Wait while the media records: `maxtime` after `limit` seconds, `finishkey` on the finish
    key, `silence` after `silence` seconds without voice (0: never).  Shared with `voicemail`."""
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        try:
            key = await asyncio.wait_for(media.digits.get(), min(POLL, left))
        except TimeoutError:
            key = None
        if key is not None and key == finish:
            return "finishkey"
        if silence and media.seconds_since_voice() >= silence:
            return "silence"
    return "maxtime"
