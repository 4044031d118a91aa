"""`queue NAME`: wait in a call-centre queue until an agent answers (pbxcore.acd).

The call layer hands the caller to the ACD service.  The outcome is the `queue` event when the
caller left without an agent (timeout, full, empty, exit_key, callback); after a bridge to an
agent the call is over, as after `dial`, and the `hangup` event carries PBX_AGENT.
"""

from __future__ import annotations

from pbxcore.script.actions import ANNOUNCE, Queue
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Queue) -> Outcome | None:
    announce = None if action.announce is None else ANNOUNCE[action.announce]
    return await call.enqueue(action.name, priority=action.priority, timeout=action.timeout,
                              exit_key=action.exit_key or "", announce=announce,
                              whisper=action.whisper)
