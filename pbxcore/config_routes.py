"""`[[routes]]` in pbx.toml: which script, worker or webhook handles a called number.

Called from ``pbxcore.config._check`` with its `Checker`. Routing: ``Config.route_for`` uses
``re.search`` with the pattern exactly as written, so anchor it (``^100$``) when a whole-number
match is meant; the first matching route wins.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pbxcore.config_checker import Checker
from pbxcore.script.actions import ActionError, parse_action_line

if TYPE_CHECKING:
    from pbxcore.config import Paths

ROUTE_KEYS = ("name", "match", "script", "timeout", "fallback", "language", "public", "env",
              "hangup_event", "hold_music", "worker", "workers", "url", "secret",
              "dial_allow", "agent_control")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Route:
    match: re.Pattern[str]  # applied with re.search to the called number
    script: Path  # absolute
    timeout: float  # seconds per script run
    fallback: tuple[str, ...]  # action lines run when the script fails
    language: str  # sub-directory of sounds/ for prompts
    public: bool  # True: callers need no digest auth (trunk routes)
    env: Mapping[str, str]  # extra environment passed to the script
    hangup_event: bool  # False: no final hangup event spawn
    hold_music: str | None  # sound played while a script runs after answer
    index: int  # 0-based position in the file ([[routes]] #index+1)
    transport: str = "process"  # "process" (script), "worker" (worker) or "webhook" (url)
    worker: Path | None = None  # absolute path of the worker program (transport "worker")
    workers: int = 2  # worker pool size, 1..64
    url: str | None = None  # http:// or https:// URL events are POSTed to (transport "webhook")
    secret: str | None = field(default=None, repr=False)  # webhook HMAC-SHA256 key
    # dial/transfer targets allowed (re.fullmatch); None: the switch's own extensions only
    dial_allow: tuple[re.Pattern[str], ...] | None = None
    name: str = ""  # the script's PBX_ROUTE; defaults to the match pattern
    agent_control: bool = False  # the `agent` action (login/logout/pause agents) is allowed


def check_route(c: Checker, r: dict[str, Any], i: int, paths: Paths) -> Route | None:
    where = ("routes", f"[[routes]] #{i + 1}", i)
    c.unknown(r, "routes", where[1], i)
    pattern = None
    if not isinstance(r.get("match"), str):
        c.fail("routes", f"{where[1]} needs match = \"REGEX\" (a string)", "match", i)
    else:
        try:
            pattern = re.compile(r["match"])
        except re.error as e:
            c.fail("routes", f"match {r['match']!r} is not a valid regular expression: {e}",
                   "match", i)
    script, transport = _check_handler(c, r, i)
    timeout = c.get(r, "timeout", (int, float), 5.0, where)
    if not 0.1 <= timeout <= 60:
        c.fail("routes", f"timeout {timeout} in {where[1]} must be 0.1..60 seconds", "timeout", i)
    fallback = c.get(r, "fallback", list, ["hangup"], where)
    for line in fallback:
        reason = _action_problem(line)
        if reason:
            c.fail("routes", f"fallback {line!r} in {where[1]}: {reason}", "fallback", i)
    language = c.get(r, "language", str, "en", where)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", language) or not (paths.sounds / language).is_dir():
        c.fail("routes", f"language {language!r}: no directory {paths.sounds / language}",
               "language", i)
    env = c.get(r, "env", dict, {}, where)
    for name, value in env.items():
        if not _ENV_NAME.match(name) or name.startswith("PBX_") or not isinstance(value, str):
            c.fail("routes", f"env {name} in {where[1]}: names are [A-Za-z_][A-Za-z0-9_]*, not "
                   "PBX_* (reserved), values are strings", "env", i)
    hold = c.get(r, "hold_music", str, None, where)
    if hold is not None and (not hold or hold.startswith("/") or ".." in Path(hold).parts):
        c.fail("routes", f"hold_music {hold!r} must name a sound under sounds/", "hold_music", i)
    elif hold is not None:
        # Same lookup as pbxcore.media.sounds: sounds/<language>/NAME.wav, then sounds/NAME.wav.
        file = hold if hold.endswith(".wav") else hold + ".wav"
        if not any((paths.sounds / sub / file).is_file() for sub in (language, ".")):
            c.fail("routes", f"hold_music {hold!r}: no {paths.sounds / language / file} or "
                   f"{paths.sounds / file}", "hold_music", i)
    public = c.get(r, "public", bool, False, where)
    hangup_event = c.get(r, "hangup_event", bool, True, where)
    workers = c.get(r, "workers", int, 2, where)
    if not 1 <= workers <= 64:
        c.fail("routes", f"workers {workers} in {where[1]} must be 1..64", "workers", i)
    if "workers" in r and transport != "worker":
        c.fail("routes", f"workers in {where[1]} needs worker = \"PATH\"", "workers", i)
    secret = c.get(r, "secret", str, None, where)
    if secret is not None and transport != "webhook":
        c.fail("routes", f"secret in {where[1]} needs url = \"http://...\"", "secret", i)
    elif secret == "":
        c.fail("routes", f"secret in {where[1]} must not be empty", "secret", i)
    dial_allow = _check_dial_allow(c, r, i, where)
    name = c.get(r, "name", str, r.get("match") if isinstance(r.get("match"), str) else "", where)
    if "name" in r and not re.fullmatch(r"[\w.\-]{1,64}", name):
        c.fail("routes", f"name {name!r} in {where[1]} must be 1..64 letters, digits, _ . -",
               "name", i)
    agent_control = c.get(r, "agent_control", bool, False, where)
    if pattern is None or script is None:
        return None
    return Route(pattern, script, float(timeout), tuple(str(x) for x in fallback), language,
                 public, types.MappingProxyType(dict(env)), hangup_event, hold, i,
                 transport=transport, worker=script if transport == "worker" else None,
                 workers=workers, url=r["url"] if transport == "webhook" else None,
                 secret=secret, dial_allow=dial_allow, name=name,
                 agent_control=agent_control)


def _check_dial_allow(c: Checker, r: dict[str, Any], i: int,
                      where: tuple[str, str, int]) -> tuple[re.Pattern[str], ...] | None:
    """`dial_allow = ["^1\\d{3}$", ...]`: what a script on this route may dial (toll fraud
    through a script bug is the classic PBX disaster, so the default is internal only)."""
    raw = c.get(r, "dial_allow", list, None, where)
    if raw is None:
        return None
    patterns: list[re.Pattern[str]] = []
    for item in raw:
        if not isinstance(item, str):
            c.fail("routes", f"dial_allow in {where[1]}: {item!r} is not a string",
                   "dial_allow", i)
            continue
        try:
            patterns.append(re.compile(item))
        except re.error as e:
            c.fail("routes", f"dial_allow {item!r} in {where[1]} is not a valid regular "
                   f"expression: {e}", "dial_allow", i)
    return tuple(patterns)


_HANDLERS = (("script", "process"), ("worker", "worker"), ("url", "webhook"))
_URL = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?(/[^\s#]*)?$")


def _check_handler(c: Checker, r: dict[str, Any], i: int) -> tuple[Path | None, str]:
    """The route's script, worker or url: exactly one.  Returns (Route.script, transport).

    Route.script names what handles the route in traces, CDRs and the engine's "is this still
    the route's own handler" test: the script or worker file, or Path(url) for a webhook.
    """
    where = f"[[routes]] #{i + 1}"
    given = [(key, kind) for key, kind in _HANDLERS if key in r]
    if not given:
        c.fail("routes", f"{where} needs script = \"PATH\" (a string), or worker = \"PATH\" "
               "or url = \"http://...\"", None, i)
        return None, "process"
    if len(given) > 1:
        names = " and ".join(key for key, _ in given)
        c.fail("routes", f"{where} has {names}: give exactly one of script, worker, url",
               given[1][0], i)
        return None, given[0][1]
    key, transport = given[0]
    value = r[key]
    if not isinstance(value, str) or not value:
        want = "\"http://...\"" if key == "url" else "\"PATH\""
        c.fail("routes", f"{where} needs {key} = {want} (a string)", key, i)
        return None, transport
    if key == "url":
        m = _URL.match(value)
        if not m or (m.group(2) and not 1 <= int(m.group(2)[1:]) <= 65535):
            c.fail("routes", f"url {value!r} in {where} must be http://HOST[:PORT][/PATH] or "
                   "https://...", "url", i)
            return None, transport
        return Path(value), transport
    path = c.resolve(value)
    # Only a warning: the program may appear later, and one broken route must not keep the
    # switch from serving the others (its calls get the route's fallback, as at run time).
    if not path.is_file():
        c.warn("routes", f"{key} {value} does not exist", key, i)
    elif not os.access(path, os.X_OK):
        c.warn("routes", f"{key} {value} is not executable (chmod +x)", key, i)
    return path, transport


def _action_problem(line: object) -> str | None:
    if not isinstance(line, str):
        return "fallback entries must be strings"
    try:
        parse_action_line(line)
    except ActionError as e:
        return e.message
    return None
