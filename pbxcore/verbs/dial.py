"""`dial TARGET...`: ring targets and bridge the first that answers (pbxcore.call.dialer).

The outcome is the `dial` event when nobody was connected; after a bridge the call is over and
the `hangup` event tells who hung up and the talk time.
"""

from __future__ import annotations

from pbxcore.script.actions import Dial
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Dial) -> Outcome | None:
    return await call.dial(action.targets, mode=action.mode, timeout=action.timeout,
                           caller_id=action.caller_id, ringback=action.ringback,
                           record=action.record)
