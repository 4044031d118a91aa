"""`voicemail BOX`: the caller leaves a message in a [[voicemail]] box.

The box's greeting (or greeting=), a beep, then the `record` verb's listening loop until max=
seconds (default the box's max_seconds) or the finish key.  The outcome is one `voicemail` event:
`saved`; `too_short` under the box's min_seconds (default 1 s, Asterisk's minsecs: a caller who
hangs up at the beep leaves nothing worth a lamp), the WAV removed; `full` when the box already
holds max_messages (nothing played or recorded: the script says what it wants); `hangup` when the
caller hung up while recording, the message kept when long enough.  A saved message is indexed in
the store, the box's notify program runs with `voicemail_left` and the owners' lamps light.
"""

from __future__ import annotations

import asyncio
import contextlib

from pbxcore.script.actions import Voicemail
from pbxcore.verbs.base import CallControl, Outcome, VoicemailSlot
from pbxcore.verbs.record import listen


def _outcome(result: str, slot: VoicemailSlot, seconds: float, kept: bool) -> Outcome:
    return Outcome("voicemail", result=result, recording=slot.name if kept else "",
                   extra={"recording_seconds": f"{seconds:.2f}", "voicemail_box": slot.box})


def _discard(slot: VoicemailSlot) -> None:
    with contextlib.suppress(OSError):
        slot.path.unlink()


async def execute(call: CallControl, action: Voicemail) -> Outcome | None:
    slot = await call.voicemail_open(action.box)
    if slot is None:
        return Outcome("voicemail", result="full", recording="",
                       extra={"recording_seconds": "0.00",
                              "voicemail_box": action.box})
    media = call.media
    try:
        await media.play(call.sound(action.greeting or slot.greeting))
    except ValueError as exc:  # no such prompt in this language: the beep still says "speak"
        call.note("error", {"voicemail": slot.box, "error": str(exc)})
    if action.beep:
        await media.play(call.sound("beep"))
    media.flush_digits()
    media.start_recording(slot.path)
    try:
        await listen(media, action.max or slot.max_seconds, action.finish, 0.0)
    except asyncio.CancelledError:
        # The caller hung up mid-message (the usual way to end one): kept when long enough,
        # saved in the background the engine waits for before the `voicemail` event it owes.
        seconds = await asyncio.shield(media.stop_recording())
        kept = seconds >= slot.min_seconds
        if kept:
            call.voicemail_save(slot, seconds)  # the call waits for it before its last events
        else:
            _discard(slot)
        call.interrupted(_outcome("hangup", slot, seconds, kept))
        raise
    seconds = await asyncio.shield(media.stop_recording())
    if seconds < slot.min_seconds:
        _discard(slot)
        return _outcome("too_short", slot, seconds, False)
    await asyncio.shield(call.voicemail_save(slot, seconds))
    return _outcome("saved", slot, seconds, True)
