"""`[originate]` in pbx.toml: calls the switch places itself (`pbx originate`, campaigns).

Called from ``pbxcore.config._check`` with its ``Checker``.  The table is optional:

- ``dial_allow``: regexes (re.fullmatch) of what an originated call may ring, both its first
  party (FROM) and what it then dials (TO, and any `dial` of its script).  The default, like a
  route's, is the switch's own extensions only: a CRM that can place calls through a trunk is
  a toll-fraud risk, so numbers out of the building must be allowed here by name.
- ``language``: the language of an originated call (prompts, `say text`), default "en".
- ``ring_timeout``: seconds FROM rings before the call is given up as `noanswer`, default 30.
- ``caller_id``: what the first party sees as the caller in script mode (default "pbx").
- ``script_timeout``: seconds per script run of an originated call, default 10.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbxcore.config_checker import Checker

ORIGINATE_KEYS = ("dial_allow", "language", "ring_timeout", "caller_id", "script_timeout")
_WHERE = ("originate", "[originate]", 0)


@dataclass(frozen=True)
class OriginateConfig:
    dial_allow: tuple[re.Pattern[str], ...] | None = None  # None: own extensions only
    language: str = "en"
    ring_timeout: float = 30.0
    caller_id: str = "pbx"
    script_timeout: float = 10.0


def check_originate(c: Checker, doc: dict[str, Any]) -> OriginateConfig:
    table = c.table(doc, "originate")
    raw = c.get(table, "dial_allow", list, None, _WHERE)
    allow: tuple[re.Pattern[str], ...] | None = None
    if raw is not None:
        patterns = []
        for item in raw:
            try:
                patterns.append(re.compile(str(item)) if isinstance(item, str) else None)
            except re.error as e:
                c.fail("originate", f"dial_allow {item!r} in [originate] is not a valid "
                       f"regular expression: {e}", "dial_allow")
                continue
            if not isinstance(item, str):
                c.fail("originate", f"dial_allow in [originate]: {item!r} is not a string",
                       "dial_allow")
        allow = tuple(p for p in patterns if p is not None)
    language = c.get(table, "language", str, "en", _WHERE)
    if not re.fullmatch(r"[a-z]{2,3}", language):
        c.fail("originate", f"language {language!r} in [originate] must be a language code "
               "like en or ru", "language")
    ring = c.get(table, "ring_timeout", (int, float), 30.0, _WHERE)
    if not 1 <= ring <= 600:
        c.fail("originate", f"ring_timeout {ring} in [originate] must be 1..600 seconds",
               "ring_timeout")
    script_timeout = c.get(table, "script_timeout", (int, float), 10.0, _WHERE)
    if not 0.1 <= script_timeout <= 3600:
        c.fail("originate", f"script_timeout {script_timeout} in [originate] must be "
               "0.1..3600 seconds", "script_timeout")
    caller_id = c.get(table, "caller_id", str, "pbx", _WHERE)
    if not re.fullmatch(r"[A-Za-z0-9_.+\-]{1,64}", caller_id):
        c.fail("originate", f"caller_id {caller_id!r} in [originate] must be a number or "
               "SIP user name", "caller_id")
    return OriginateConfig(allow, language, float(ring), caller_id, float(script_timeout))
