"""`say digits|number VALUE`: speak a value with the language's prompts (sounds/README.md).

`number_words` is the pure part: it maps an integer to prompt names for English and Russian
(Russian thousands are feminine and take тысяча / тысячи / тысяч by the last digits).
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


def number_words(n: int, language: str) -> list[str]:
    """Prompt names under numbers/ that speak `n` (|n| < 1,000,000)."""
    if abs(n) >= 1_000_000:
        raise ValueError(f"say number: {n} is out of range (-999999..999999)")
    if n == 0:
        return ["0"]
    if n < 0:
        return ["minus", *number_words(-n, language)]
    thousands, rest = divmod(n, 1000)
    words: list[str] = []
    if language == "ru":
        if thousands:
            words += _ru_below_1000(thousands, feminine=True) + [_ru_thousand(thousands)]
        return words + (_ru_below_1000(rest, feminine=False) if rest else [])
    if thousands:
        words += _en_below_1000(thousands) + ["thousand"]
    return words + (_en_below_1000(rest) if rest else [])


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


def _ru_thousand(t: int) -> str:
    if 11 <= t % 100 <= 14:
        return "thousand_5"
    return {1: "thousand_1", 2: "thousand_2", 3: "thousand_2", 4: "thousand_2"}.get(
        t % 10, "thousand_5")
