"""Agent feature codes: an agent dials `*71` (login), `*72` (logout), `*73[REASON]` (pause) or
`*74` (unpause) from their own phone ([agents] in pbx.toml) and hears the result.

The call is authenticated like any call from a phone (the agent is the digest user, so nobody can
log someone else in), answered by the switch itself — no script runs — and gets a normal CDR
(route `agent-login` ...).  The prompt says what happened: `agent-login`, `agent-logout`,
`agent-pause`, `agent-unpause`, or `agent-refused` when the phone is no member of any queue.
"""

from __future__ import annotations

import os
import re
import types
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pbxcore.acd.api import AgentError, AgentOp
from pbxcore.config import Config, Route

if TYPE_CHECKING:
    from pbxcore.call.call import Call


def feature_route(config: Config, op: str, code: str) -> Route:
    """The route a feature call is handled on: authenticated, no script, no hangup event."""
    language = config.routes[0].language if config.routes else "en"
    return Route(re.compile(re.escape(code)), Path(os.devnull), 1.0, ("hangup",), language,
                 False, types.MappingProxyType({}), False, None, -1, name=f"agent-{op}")


async def run_feature(call: Call, op: str, reason: str | None) -> None:
    """Apply the feature to the calling agent, say so, hang up."""
    acd = call.deps.acd
    agent = call.info.caller
    prompt = f"agent-{op}"
    try:
        if acd is None:
            raise AgentError("no queues are configured")
        await acd.agent_control(cast(AgentOp, op), agent, queue=None, reason=reason,
                                via="phone")
        call.note("note", {"agent": op, "extension": agent, "reason": reason})
    except AgentError as exc:
        call.note("error", {"agent": op, "extension": agent, "error": str(exc)})
        prompt = "agent-refused"
    await call.answer()
    try:
        await call.media.play(call.sound(prompt))
    except ValueError as exc:  # no such prompt in this language: the hangup still tells
        call.note("error", {"prompt": prompt, "error": str(exc)})
    await call.hangup()
