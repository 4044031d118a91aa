"""`transfer TARGET`: `dial` with one target."""

from __future__ import annotations

from pbxcore.script.actions import Transfer
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Transfer) -> Outcome | None:
    return await call.dial((action.target,), mode="sequential", timeout=action.timeout,
                           caller_id=None, ringback="ring", record=False)
