"""`log TEXT...`: a line in the call's trace (and the switch log at debug level)."""

from __future__ import annotations

import logging

from pbxcore.script.actions import Log
from pbxcore.verbs.base import CallControl, Outcome

logger = logging.getLogger("pbxcore.script")


async def execute(call: CallControl, action: Log) -> Outcome | None:
    call.note("note", {"log": action.text})
    logger.debug("script log: %s", action.text)
    return None
