"""Making caller-controlled text safe for a script's environment, a log line and a terminal (pure).

The caller chooses the From display name, the user part of the URI and the digits they press, so
none of it may reach an environment variable unchanged: a newline would let a script that writes
`echo "$PBX_CALLER_NAME"` into its own output inject an action, an ESC sequence would reach a
terminal, a NUL cannot be put into an environment at all. The environment gets a cleaned, bounded
copy; the raw value travels only inside the JSON on stdin, where JSON escaping makes it inert.
Logs and terminals get `printable`: the same text with control characters escaped, readable and
one line; `SafeFormatter` applies it to every log record, so no call site can forget it.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from typing import Any

ENV_VALUE_MAX = 256
"""Longest environment value, in characters (a From display name is rarely above 64)."""

_NAME_JUNK = re.compile(r"[^A-Z0-9_]")


def env_value(text: str, limit: int = ENV_VALUE_MAX) -> str:
    """Drop control and format characters (C0, DEL, C1, Cf, surrogates, line and paragraph
    separators; NUL, CR, LF and ESC among them), then cut to `limit` characters."""
    if not text.isprintable():
        # isprintable() is False for every category we drop, and also for spaces other
        # than U+0020 (Zs), which are harmless and kept.
        text = "".join(c for c in text if _keep(c))
    return text[:limit]


def _keep(c: str) -> bool:
    cat = unicodedata.category(c)
    return cat[0] != "C" and cat not in ("Zl", "Zp")


def env_name(name: str) -> str:
    """A call variable name as an environment name suffix: upper case, [A-Z0-9_] only."""
    return _NAME_JUNK.sub("_", name.upper())


# ---------------------------------------------------------------- text for logs and terminals

# What a log line or a terminal must never receive raw from a caller: C0 controls (newline forges
# a log line, ESC starts an ANSI/OSC sequence), DEL, C1 controls (0x9b is an 8-bit CSI), lone
# surrogates (the parser's undecodable bytes; they cannot even be written as UTF-8), and every
# format character (Cf: the bidirectional overrides and isolates that reorder what is shown, the
# zero-width ones that hide text), private-use characters (Co) and the line and paragraph
# separators (Zl, Zp). The Cf/Co ranges are Unicode 15's (test_printable checks them against
# this Python's unicodedata); U+13439-1343F are unassigned before Unicode 15, which is harmless.
_FORMAT = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
           "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ue000-\uf8ff\ufeff\ufff9-\ufffb"
           "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
           "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000f0000-\U000ffffd"
           "\U00100000-\U0010fffd")
_UNPRINTABLE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT}]")
_UNPRINTABLE_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT}]")
# JSON (ensure_ascii=False) escapes C0 itself but leaves the rest raw; outside strings JSON holds
# none of these, so escaping them with JSON's own escapes keeps it valid.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f\ud800-\udfff{_FORMAT}]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    c = match.group()
    if c in _SHORT:
        return _SHORT[c]
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # an undecodable byte: show its value, as the store does
        return f"\\x{n - 0xDC00:02x}"
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def printable(text: str, *, keep_lines: bool = False) -> str:
    """`text` safe to write to a log line or a terminal: every character above written as a
    Python-style escape (``\\n``, ``\\x1b``, ``\\u202e``), everything else unchanged. With
    `keep_lines`, newlines and tabs stay (a script's multi-line stdout in `pbx trace`). The one
    escaper of the project: logs (SafeFormatter), the CLI's tables and messages, the trace."""
    return (_UNPRINTABLE_BUT_LINES if keep_lines else _UNPRINTABLE).sub(_escaped, text)


def json_printable(value: Any) -> str:
    """`value` as indented JSON that is safe to print on a terminal (no DEL, C1, surrogate or
    format character raw: each is a JSON escape) and still valid JSON with its letters kept."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: json.dumps(m.group())[1:-1], text)


class SafeFormatter(logging.Formatter):
    """A log formatter that escapes caller-controlled text in every record, whoever logged it:
    the message (with its arguments) becomes one line; a traceback keeps its newlines but no
    other control character."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return printable(super().formatException(ei), keep_lines=True)

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return printable(super().formatStack(stack_info), keep_lines=True)
