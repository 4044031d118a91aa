"""`say digits|number VALUE`: speak a value with the language's prompts (sounds/README.md).

`number_words` is the pure part: it maps an integer of up to 15 digits (what the validator
accepts) to prompt names for English and Russian: groups of three digits with thousand, million,
billion, trillion (Russian scale words agree with the number; тысяча is feminine).
"""

from __future__ import annotations

from pbxcore.script.actions import Say
from pbxcore.verbs.base import CallControl, Outcome

KEY_NAMES = {"*": "star", "#": "pound"}


async def execute(call: CallControl, action: Say) -> Outcome | None:
    if action.kind == "digits":
        names = [f"digits/{KEY_NAMES.get(k, k)}" for k in action.value]
    else:
        names = [f"numbers/{w}" for w in number_words(int(action.value), call.language)]
    await call.media.play(b"".join(call.sound(n) for n in names))
    return None


# Powers of a thousand, largest first: what `say number` accepts (15 digits) it can speak.
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
LIMIT = 10**15  # the validator's -?[0-9]{1,15}


def number_words(n: int, language: str) -> list[str]:
    """Prompt names under numbers/ that speak `n` (|n| < 10**15, every value `say` accepts).

    Each group of three digits is read as a number below 1000 and followed by its scale word;
    in Russian the scale word agrees with the group (тысяча / тысячи / тысяч, миллион /
    миллиона / миллионов) and тысяча, being feminine, takes одна / две."""
    if abs(n) >= LIMIT:
        raise ValueError(f"say number: {n} is out of range (at most 15 digits)")
    if n == 0:
        return ["0"]
    if n < 0:
        return ["minus", *number_words(-n, language)]
    words: list[str] = []
    for size, scale in _SCALES:
        group, n = divmod(n, size)
        if not group:
            continue
        if language == "ru":
            words += _ru_below_1000(group, feminine=scale == "thousand")
            words.append(f"{scale}_{_ru_form(group)}")
        else:
            words += _en_below_1000(group) + [scale]
    if n:
        words += _ru_below_1000(n, feminine=False) if language == "ru" else _en_below_1000(n)
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


def _ru_form(n: int) -> int:
    """Which Russian plural form follows `n`: 1 (одна тысяча), 2 (две тысячи), 5 (пять тысяч)."""
    if 11 <= n % 100 <= 14:
        return 5
    return {1: 1, 2: 2, 3: 2, 4: 2}.get(n % 10, 5)
