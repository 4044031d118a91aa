"""`set NAME=VALUE...`: call variables, passed to every later event as PBX_VAR_<NAME> and in the
JSON `vars`, and stored with the CDR."""

from __future__ import annotations

from pbxcore.script.actions import Set
from pbxcore.verbs.base import CallControl, Outcome

MAX_VARS = 200


async def execute(call: CallControl, action: Set) -> Outcome | None:
    for name, value in action.vars.items():
        if name not in call.vars and len(call.vars) >= MAX_VARS:
            raise ValueError(f"set: more than {MAX_VARS} call variables")
        call.vars[name] = value
    return None
