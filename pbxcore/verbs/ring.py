"""`ring`: send 180 Ringing so the caller's phone plays ringback; ignored once answered."""

from __future__ import annotations

from pbxcore.script.actions import Ring
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Ring) -> Outcome | None:
    if not call.answered:
        await call.ring()
    return None
