"""`say digits|number VALUE`: speak a value with the language's prompts (sounds/README.md);
`say text "..." [voice=V]`: speak any text with espeak-ng (Call.speak, media/tts.py).

`number_words` is the pure part: it maps an integer of up to 15 digits (what the validator
accepts) to prompt names for English and Russian: groups of three digits with thousand, million,
billion, trillion (Russian scale words agree with the number; тысяча is feminine).
`announcement` builds a queue's position / estimated-wait announcement from the same words
(sounds/README.md, "Queue announcements").
"""

from __future__ import annotations

from collections.abc import Sequence

from pbxcore.script.actions import Say
from pbxcore.verbs.base import CallControl, Outcome

KEY_NAMES = {"*": "star", "#": "pound"}


async def execute(call: CallControl, action: Say) -> Outcome | None:
    if action.kind == "text":
        await call.media.play(await call.speak(action.value, action.voice))
        return None
    if action.kind == "digits":
        names = [f"digits/{KEY_NAMES.get(k, k)}" for k in action.value]
    else:
        names = [f"numbers/{w}" for w in number_words(int(action.value), call.language)]
    await call.media.play(b"".join(call.sound(n) for n in names))
    return None


# Powers of a thousand, largest first: what `say number` accepts (15 digits) it can speak.
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
LIMIT = 10**15  # the validator's -?[0-9]{1,15}


def number_words(n: int, language: str, *, feminine: bool = False) -> list[str]:
    """Prompt names under numbers/ that speak `n` (|n| < 10**15, every value `say` accepts).

    Each group of three digits is read as a number below 1000 and followed by its scale word;
    in Russian the scale word agrees with the group (тысяча / тысячи / тысяч, миллион /
    миллиона / миллионов) and тысяча, being feminine, takes одна / две.  `feminine`: `n`
    counts a feminine noun (Russian минута: одна минута, две минуты; no change in English)."""
    if abs(n) >= LIMIT:
        raise ValueError(f"say number: {n} is out of range (at most 15 digits)")
    if n == 0:
        return ["0"]
    if n < 0:
        return ["minus", *number_words(-n, language, feminine=feminine)]
    words: list[str] = []
    for size, scale in _SCALES:
        group, n = divmod(n, size)
        if not group:
            continue
        if language == "ru":
            words += _ru_below_1000(group, feminine=scale == "thousand")
            words.append(f"{scale}_{plural_form(group)}")
        else:
            words += _en_below_1000(group) + [scale]
    if n:
        words += _ru_below_1000(n, feminine=feminine) if language == "ru" else _en_below_1000(n)
    return words


def _en_below_1000(n: int) -> list[str]:
    hundreds, r = divmod(n, 100)
    words = [str(hundreds), "hundred"] if hundreds else []
    if r >= 20:
        words.append(str(r - r % 10))
        if r % 10:
            words.append(str(r % 10))
    elif r:
        words.append(str(r))
    return words


def _ru_below_1000(n: int, *, feminine: bool) -> list[str]:
    hundreds, r = divmod(n, 100)
    words = [str(hundreds * 100)] if hundreds else []
    if r >= 20:
        words.append(str(r - r % 10))
        r %= 10
    if r:
        words.append(f"{r}f" if feminine and r in (1, 2) else str(r))
    return words


def plural_form(n: int) -> int:
    """The Russian plural class of a noun counted by `n`: 1 (одна минута, 21 минута), 2 (2-4,
    22-24 минуты) or 5 (5-20, 25-30, and 11-14: минут)."""
    n = abs(n)
    if 11 <= n % 100 <= 14:
        return 5
    return {1: 1, 2: 2, 3: 2, 4: 2}.get(n % 10, 5)


ANNOUNCE_PARTS = ("position", "wait", "thanks")
_MINUTES = {1: "queue-minute", 2: "queue-minutes-few", 5: "queue-minutes"}


def announcement(position: int | None, wait_seconds: float | None, language: str,
                 parts: Sequence[str] = ANNOUNCE_PARTS,
                 callback_key: str | None = None) -> list[str]:
    """The prompt names of a queue announcement, in order, ready for `Call.sound`.

    `parts` says what to say (the queue action's `announce=position,wait`; "thanks" adds
    `queue-thanks` at the end), always in the order position, wait, thanks:
    * position 1 is `queue-next` ("you are the next caller"), N > 1 is `queue-position` then
      N as a cardinal number ("Ваш номер в очереди: три" needs no ordinal forms);
    * the wait is rounded to whole minutes (half up): under 30 s (0 minutes) it is
      `queue-less-than-minute`; else `queue-wait`, the number and the minute word in the form
      the number takes (en: minute / minutes; ru: минута / минуты / минут, and минута is
      feminine: одна минута, две минуты).
    A part whose figure is None (no estimate without agents) is left out.  A queue with a
    `callback_key` ends every announcement with `queue-callback-offer` and the key ("to be
    called back instead of waiting, press star").
    """
    unknown = [p for p in parts if p not in ANNOUNCE_PARTS]
    if unknown:
        raise ValueError(f"announcement: unknown part {unknown[0]!r} "
                         f"(use {', '.join(ANNOUNCE_PARTS)})")
    names: list[str] = []
    if "position" in parts and position is not None and position >= 1:
        names += (["queue-next"] if position == 1 else
                  ["queue-position", *(f"numbers/{w}" for w in number_words(position, language))])
    if "wait" in parts and wait_seconds is not None and wait_seconds >= 0:
        minutes = min(int(wait_seconds / 60 + 0.5), 999_999)
        if minutes == 0:
            names += ["queue-wait", "queue-less-than-minute"]
        else:
            form = plural_form(minutes) if language == "ru" else (1 if minutes == 1 else 5)
            names += ["queue-wait",
                      *(f"numbers/{w}" for w in number_words(minutes, language, feminine=True)),
                      _MINUTES[form]]
    if "thanks" in parts:
        names.append("queue-thanks")
    if callback_key:
        names += ["queue-callback-offer", f"digits/{_KEY_PROMPT.get(callback_key, callback_key)}"]
    return names


_KEY_PROMPT = {"*": "star", "#": "pound"}
