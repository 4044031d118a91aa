"""`hangup`: BYE when answered, 480 before answer; the actions after it never run."""

from __future__ import annotations

from pbxcore.script.actions import Hangup
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Hangup) -> Outcome | None:
    await call.hangup()
    return None
