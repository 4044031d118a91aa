"""`gather`: collect DTMF digits (RFC 4733 events from the media session).

The prompt plays until the first key; then `timeout` applies to the first digit (counted from
the end of the prompt) and `digit_timeout` between digits.  Input ends at `max` digits, at the
`finish` key (not included), or on a timeout.  Without a finish key `#` is an ordinary digit.
Result: `ok` (at least `min` digits), `short` (some, fewer than `min`), `timeout` (none).
Digits pressed before the gather started are discarded: a gather asks a new question.
"""

from __future__ import annotations

import asyncio
import contextlib

from pbxcore.script.actions import Gather
from pbxcore.verbs.base import CallControl, Outcome


async def execute(call: CallControl, action: Gather) -> Outcome | None:
    media = call.media
    media.flush_digits()
    digits = ""
    finished = False
    if action.prompt:
        prompt = asyncio.ensure_future(media.play(call.sound(action.prompt)))
        first = asyncio.ensure_future(media.digits.get())
        try:
            await asyncio.wait({prompt, first}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            prompt.cancel()  # barge-in: the first key stops the prompt
            with contextlib.suppress(asyncio.CancelledError):
                await prompt
            if not first.done():
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first
        if first.done() and not first.cancelled():
            digits, finished = _add(digits, first.result(), action)
    while not finished and len(digits) < action.max:
        wait = action.digit_timeout if digits else action.timeout
        try:
            key = await asyncio.wait_for(media.digits.get(), wait)
        except TimeoutError:
            break
        digits, finished = _add(digits, key, action)
    result = "timeout" if not digits else ("ok" if len(digits) >= action.min else "short")
    return Outcome("gather", result=result, digits=digits)


def _add(digits: str, key: str, action: Gather) -> tuple[str, bool]:
    """Append `key` unless it is the finish key; True when input is complete."""
    if action.finish is not None and key == action.finish:
        return digits, True
    digits += key
    return digits, len(digits) >= action.max
