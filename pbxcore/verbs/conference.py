"""`conference ROOM`: join a conference room (pbxcore.call.conference).

Once in the room the call stays there until it hangs up, is kicked (`pbx conference kick`) or,
with end=yes, the last moderator leaves: the call is then over, as after `dial`, and the
`hangup` event carries PBX_CONFERENCE and PBX_CONFERENCE_RESULT.  A caller who never got in
(full, bad_pin) gets the `conference` event.
"""

from __future__ import annotations

from pbxcore.script.actions import Conference
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Conference) -> Outcome | None:
    return await call.conference(action.room, moderator=action.moderator, muted=action.muted,
                                 max_members=action.max, pin=action.pin, end=action.end)
