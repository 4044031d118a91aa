"""`agent login|logout|pause|unpause EXT`: change an agent's state (pbxcore.acd).

Allowed only on routes with `agent_control = true` (the call layer checks it: a script on a
public route must not be able to log a whole call centre out).  No outcome: the action list goes
on, so an "agent desk" IVR can confirm with a prompt.
"""

from __future__ import annotations

from pbxcore.script.actions import Agent
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Agent) -> Outcome | None:
    await call.agent_control(action.op, action.extension, queue=action.queue,
                             reason=action.reason)
    return None
