"""`play FILE... [loop=N]`: play prompts in order, N times; every file is checked before the first
sound so a typo in the third prompt does not cut the first two short."""

from __future__ import annotations

from pbxcore.script.actions import Play
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Play) -> Outcome | None:
    audio = b"".join(call.sound(name) for name in action.files)
    for _ in range(action.loop):
        await call.media.play(audio)
    return None
