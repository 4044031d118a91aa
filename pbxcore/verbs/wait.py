"""`wait SECONDS`: keep the line open (silence, or hold music the caller already hears)."""

from __future__ import annotations

import asyncio

from pbxcore.script.actions import Wait
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Wait) -> Outcome | None:
    await asyncio.sleep(action.seconds)
    return None
