"""The `voicemail` verb against an in-memory call: greeting, beep, the outcome per case."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pbxcore.script.actions import parse_action_line
from pbxcore.verbs import execute
from pbxcore.verbs.base import Outcome, VoicemailSlot
from tests.unit.verbs.test_verbs import FakeCall, FakeMedia


class Media(FakeMedia):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.recording: Path | None = None

    def start_recording(self, path: Path) -> None:
        self.recording = path
        path.write_bytes(b"RIFF")

    async def stop_recording(self) -> float:
        return self.seconds


class Call(FakeCall):
    def __init__(self, tmp: Path, seconds: float, *, room: bool = True) -> None:
        super().__init__()
        self.media = Media(seconds)  # type: ignore[assignment]
        self.room = room
        self.saved: list[tuple[VoicemailSlot, float]] = []
        self.slot = VoicemailSlot("sales", "record-after-beep", 30.0, 1.0, tmp / "m.wav",
                                  "voicemail/sales/m.wav")
        self.cut: Outcome | None = None

    async def voicemail_open(self, box: str) -> VoicemailSlot | None:
        return self.slot if self.room else None

    def voicemail_save(self, slot: VoicemailSlot, seconds: float) -> asyncio.Future[None]:
        self.saved.append((slot, seconds))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def interrupted(self, outcome: Outcome) -> None:
        self.cut = outcome


async def leave(call: Call, line: str, keys: str = "#") -> Outcome | None:
    async def press() -> None:
        await asyncio.sleep(0.01)
        for k in keys:
            call.media.digits.put_nowait(k)

    presser = asyncio.create_task(press())
    outcome = await execute(call, parse_action_line(line))  # type: ignore[arg-type]
    presser.cancel()
    return outcome


async def test_saved_after_greeting_and_beep(tmp_path: Path) -> None:
    call = Call(tmp_path, 4.5)
    outcome = await leave(call, "voicemail sales")
    assert call.answered and call.sounds == ["record-after-beep", "beep"]
    assert outcome == Outcome("voicemail", result="saved", recording="voicemail/sales/m.wav",
                              extra={"recording_seconds": "4.50", "voicemail_box": "sales"})
    assert call.saved == [(call.slot, 4.5)]


async def test_greeting_option_and_no_beep(tmp_path: Path) -> None:
    call = Call(tmp_path, 2.0)
    await leave(call, "voicemail sales greeting=vm/away beep=no")
    assert call.sounds == ["vm/away"]


async def test_too_short_is_removed_and_not_saved(tmp_path: Path) -> None:
    call = Call(tmp_path, 0.4)
    outcome = await leave(call, "voicemail sales")
    assert outcome is not None and (outcome.result, outcome.recording) == ("too_short", "")
    assert call.saved == [] and not call.slot.path.exists()


async def test_full_plays_nothing(tmp_path: Path) -> None:
    call = Call(tmp_path, 3.0, room=False)
    outcome = await leave(call, "voicemail sales")
    assert outcome is not None and outcome.result == "full" and outcome.recording == ""
    assert call.sounds == [] and call.saved == []


async def test_hangup_mid_message_keeps_it(tmp_path: Path) -> None:
    call = Call(tmp_path, 2.5)
    task = asyncio.create_task(leave(call, "voicemail sales max=30", keys=""))
    await asyncio.sleep(0.05)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert call.cut is not None and call.cut.result == "hangup"
    assert call.cut.recording == "voicemail/sales/m.wav" and call.saved == [(call.slot, 2.5)]
