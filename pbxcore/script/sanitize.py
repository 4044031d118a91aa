"""Making caller-controlled text safe for a script's environment (pure).

The caller chooses the From display name, the user part of the URI and the digits they press, so
none of it may reach an environment variable unchanged: a newline would let a script that writes
`echo "$PBX_CALLER_NAME"` into its own output inject an action, an ESC sequence would reach a
terminal, a NUL cannot be put into an environment at all. The environment gets a cleaned, bounded
copy; the raw value travels only inside the JSON on stdin, where JSON escaping makes it inert.
"""

from __future__ import annotations

import re
import unicodedata

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
