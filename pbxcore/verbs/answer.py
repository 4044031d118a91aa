"""`answer`: send 200 OK with our SDP answer (RFC 3261 §13.3.1.4); a no-op when answered."""

from __future__ import annotations

from pbxcore.script.actions import Answer
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Answer) -> Outcome | None:
    await call.answer()
    return None
