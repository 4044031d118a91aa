"""Bounded numbers from a peer's text: every numeric SIP or SDP field goes through here.

Why not `int()` or `str.isdigit()`: the grammars (RFC 3261 §25.1 `1*DIGIT`, RFC 8866 §9, RFC 5234
`DIGIT = %x30-39`) allow ASCII digits only, but `int()` also takes "+5", " 5", "1_000" and any
Unicode decimal digit ("٣" is 3), and it raises a plain ValueError, not `SipSyntaxError`, for "²"
(which `str.isdigit()` accepts) and for any string of more than 4,300 digits (CPython's
`sys.get_int_max_str_digits()`).  Either way a peer's text, not our code, decided whether it got an
answer.  Here the text must be ASCII digits, and its length is checked against the bound *before*
the conversion, so the conversion can neither fail nor cost more than a few digits.

The functions return None for a bad field, so that each caller raises its own error with the
status the peer should get (`SipSyntaxError` 400 in SIP headers, `SdpError` → 488 in SDP) or falls
back to a default where the RFC says so.  Pure, and importing nothing from the SIP layer, so
`message.py` itself can use it.
"""

from __future__ import annotations

import re

# fullmatch, not `^...$`: `$` also matches before a trailing "\n".  `[0-9]` is ASCII only.
_DIGITS = re.compile(r"[0-9]+")

#: RFC 3261 §20.19/§20.33 delta-seconds and other "32-bit unsigned" fields.
UINT32_MAX = 2**32 - 1


def _significant(text: str) -> str | None:
    """The digits without leading zeros ("0" for zero), or None if `text` is not 1*DIGIT."""
    if not _DIGITS.fullmatch(text):
        return None
    return text.lstrip("0") or "0"


def ascii_uint(text: str, maximum: int) -> int | None:
    """`text` as a number if it is one or more ASCII digits and at most `maximum`, else None.

    Leading zeros are allowed (RFC 4475 §3.1.1.1 wsinv: `CSeq: 0009`), however many.
    """
    digits = _significant(text)
    if digits is None or len(digits) > len(str(maximum)):
        return None
    value = int(digits)
    return value if value <= maximum else None


def clamped_uint(text: str, maximum: int) -> int | None:
    """Like `ascii_uint`, but a value above `maximum` is `maximum` (RFC 4475 §3.1.2.5 scalar02:
    an absurd Expires is the longest we allow, never an overflow), None only for non-digits."""
    digits = _significant(text)
    if digits is None:
        return None
    if len(digits) > len(str(maximum)):
        return maximum
    return min(int(digits), maximum)

