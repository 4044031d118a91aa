"""The verbs: one module per action of the script contract, and the registry that runs them.

`execute(call, action)` answers the call first when the action needs media (play, say, gather,
record: documented as the implicit answer), then runs the verb.  Adding an action = one module
here + its class in pbxcore.script.actions; the registry test fails if either is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pbxcore.script.actions import Action
from pbxcore.verbs import (
    agent,
    answer,
    conference,
    dial,
    gather,
    goto,
    hangup,
    log,
    play,
    queue,
    record,
    record_call,
    reject,
    ring,
    say,
    set_vars,
    transfer,
    voicemail,
    wait,
)
from pbxcore.verbs.base import CallControl, Outcome

Verb = Callable[[CallControl, Any], Awaitable[Outcome | None]]

VERBS: dict[str, Verb] = {
    "answer": answer.execute,
    "ring": ring.execute,
    "hangup": hangup.execute,
    "play": play.execute,
    "say": say.execute,
    "gather": gather.execute,
    "record": record.execute,
    "set": set_vars.execute,
    "goto": goto.execute,
    "wait": wait.execute,
    "reject": reject.execute,
    "log": log.execute,
    "dial": dial.execute,
    "transfer": transfer.execute,
    "record_call": record_call.execute,
    "queue": queue.execute,
    "agent": agent.execute,
    "conference": conference.execute,
    "voicemail": voicemail.execute,
}


async def execute(call: CallControl, action: Action) -> Outcome | None:
    """Run one action on `call`; its Outcome (gather, record, goto, dial, queue) ends the list."""
    if action.needs_answer and not call.answered:
        await call.answer()
    return await VERBS[action.verb](call, action)
