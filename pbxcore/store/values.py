"""Value rules every store backend shares: timezone-aware UTC times, ISO text, storable text.

Text that came from a peer (caller name, script output) may hold what no backend can store: NUL,
which PostgreSQL refuses in text and jsonb, and lone surrogates, which are how the SIP parser
(UTF-8 with ``surrogateescape``) carries bytes that are not UTF-8 and which neither SQLite nor
PostgreSQL can encode.  ``store_text`` (via ``scrub``) makes every string storable, the same on
every backend: NUL becomes U+FFFD, an escaped byte (U+DC80..U+DCFF) becomes the four characters
``\\xNN`` (the byte's value is kept and readable), any other lone surrogate ``\\uDNNN``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store takes timezone-aware UTC times")
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat(timespec="microseconds")


def from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _stored_char(match: re.Match[str]) -> str:
    c = ord(match.group())
    if c == 0:
        return "\ufffd"
    if 0xDC80 <= c <= 0xDCFF:  # a byte surrogateescape could not decode: keep its value
        return f"\\x{c - 0xDC00:02x}"
    return f"\\u{c:04x}"


def store_text(text: str) -> str:
    """``text`` as every backend stores it: NUL -> U+FFFD, a surrogateescape'd byte -> ``\\xNN``,
    another lone surrogate -> ``\\uDNNN`` (see the module docstring); valid text unchanged."""
    return _UNSTORABLE.sub(_stored_char, text)


def scrub(value: Any) -> Any:
    """``value`` with every string in it (keys too) passed through ``store_text``."""
    if isinstance(value, str):
        return store_text(value)
    if isinstance(value, Mapping):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value
