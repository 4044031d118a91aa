"""`record_call start|stop`: record the conversation of the call's next bridge (both sides).

A script runs between bridges, never during one, so `start` arms recording for the `dial` that
follows and `stop` disarms it; `dial ... record=yes` does the same for one dial.
"""

from __future__ import annotations

from pbxcore.script.actions import RecordCall
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: RecordCall) -> Outcome | None:
    call.record_calls = action.what == "start"
    call.note("note", {"record_call": action.what})
    return None
