"""`reject busy|decline|unavailable|CODE`: a final error response (486, 603, 480 or CODE);
once answered there is nothing to reject, so the call is hung up instead."""

from __future__ import annotations

from pbxcore.script.actions import Reject
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Reject) -> Outcome | None:
    await call.reject(action.status)
    return None
