"""`goto SCRIPT`: hand the call to another script, which gets a `redirect` event whose result is
the name of the script that redirected (docs/protocol.md)."""

from __future__ import annotations

from pbxcore.script.actions import Goto
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Goto) -> Outcome | None:
    target = call.script_path(action.script)
    return Outcome("redirect", script=target)  # the engine names the redirecting script
