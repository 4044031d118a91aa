"""The events a script receives (protocol v1), as environment variables and as stdin JSON.

An :class:`Event` is what the engine knows when it runs the script: who calls whom, what the last
action with an outcome produced, the call's variables and the history of earlier events. The
same event is rendered twice: :func:`event_env` gives the CGI-style ``PBX_*`` variables
(sanitised, bounded: see sanitize.py) and :func:`event_json` the full, raw data as one JSON line.
New fields arrive through ``extra`` (``{"dial_status": "busy"}`` becomes ``PBX_DIAL_STATUS`` and a
top-level JSON key), so adding one touches neither the renderer nor existing scripts. Pure.

Fields that outlive their event (the queue's ``queue``, ``queue_wait``, ``queue_position`` and
``agent``, QUEUE_FIELDS) travel the same way: the engine keeps them per call and puts them into
the ``extra`` of every later event, so a script still knows at `hangup` which agent answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pbxcore.acd.spec import QUEUE_RESULTS as _QUEUE_RESULTS
from pbxcore.script.sanitize import env_name, env_value

PROTOCOL_VERSION = 1

EVENT_NAMES = ("incoming", "gather", "record", "dial", "transfer", "queue", "redirect", "hangup",
               "conference", "voicemail")
"""Events of protocol v1; the script should treat any other name as "nothing to do"."""

GATHER_RESULTS = ("ok", "short", "timeout")
"""ok: min..max digits; short: fewer than min when input ended; timeout: no digit at all."""
RECORD_RESULTS = ("finishkey", "silence", "maxtime", "hangup")
"""What ended the recording."""
VOICEMAIL_RESULTS = ("saved", "too_short", "full", "hangup")
"""saved: the message is in the box; too_short: under the box's min_seconds, not kept; full: the
box holds max_messages (or is no [[voicemail]] box), nothing recorded; hangup: the caller hung up
while recording, the message is kept when long enough (PBX_RECORDING empty when not)."""
HANGUP_RESULTS = ("caller", "callee", "script", "switch", "shutdown")
"""Who ended the call: the caller, the connected party (after dial/queue), an action
(hangup/reject/end of list), the switch itself (a failure, no ACK), or a switch shutdown."""
QUEUE_RESULTS = _QUEUE_RESULTS
"""Why a caller left a queue without an agent: timeout, full, empty, exit_key, callback."""
QUEUE_FIELDS = ("queue", "queue_wait", "queue_position", "agent")
"""Extra fields of the `queue` event that every later event of the call carries too."""

BASE_ENV: Mapping[str, str] = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/nonexistent",
}
"""Everything a script sees of the switch's environment; a route's `env` adds to it."""

_FIXED = (
    ("PBX_EVENT", "event", "name"),
    ("PBX_CALL_ID", "call_id", "call_id"),
    ("PBX_CALLER", "caller", "caller"),
    ("PBX_CALLER_NAME", "caller_name", "caller_name"),
    ("PBX_CALLED", "called", "called"),
    ("PBX_ROUTE", "route", "route"),
    ("PBX_LANGUAGE", "language", "language"),
    ("PBX_DIGITS", "digits", "digits"),
    ("PBX_RESULT", "result", "result"),
    ("PBX_RECORDING", "recording", "recording"),
)
"""(environment name, JSON key, Event attribute) of the fixed fields."""

_RESERVED = {key for _, key, _ in _FIXED} | {"protocol", "vars", "headers", "history"}
_EXTRA_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class HistoryEntry:
    """One earlier event of the same call."""

    event: str
    """Its name (incoming, gather, ...)."""
    result: str = ""
    """Its PBX_RESULT."""


@dataclass(frozen=True)
class Event:
    """One call event as handed to a script."""

    name: str
    """incoming | gather | record | redirect | hangup."""
    call_id: str
    """The switch's id for the call (not the SIP Call-ID)."""
    caller: str = ""
    """Caller number: user part of the From URI (caller-controlled)."""
    caller_name: str = ""
    """From display name (caller-controlled)."""
    called: str = ""
    """Dialled number: user part of the request URI."""
    route: str = ""
    """Name of the route in pbx.toml that matched."""
    language: str = "en"
    """Language of the sounds (sounds/LANGUAGE/)."""
    vars: Mapping[str, str] = field(default_factory=dict)
    """Call variables (route vars plus `set`)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """SIP headers of interest from the INVITE, raw (JSON only)."""
    result: str = ""
    """Outcome of the action that caused this event (see *_RESULTS)."""
    digits: str = ""
    """Digits collected by gather (without the finish key)."""
    recording: str = ""
    """Path of the recording made by record."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Further fields: key k becomes PBX_K and JSON "k" (recording_seconds, hangup_cause, ...)."""
    history: tuple[HistoryEntry, ...] = ()
    """Earlier events of this call, oldest first."""

    def __post_init__(self) -> None:
        for key in self.extra:
            if not _EXTRA_KEY.fullmatch(key) or key in _RESERVED:
                raise ValueError(f"bad extra event field {key!r}")  # our bug, not the script's


CONFERENCE_FIELDS = ("conference", "conference_result", "conference_seconds")
"""Fields a conference visit leaves: on the `conference` event, and carried to `hangup`."""


def conference_fields(room: str, result: str, seconds: float) -> dict[str, str]:
    """PBX_CONFERENCE, PBX_CONFERENCE_RESULT (left, kicked, ended; full, bad_pin for the
    `conference` event) and PBX_CONFERENCE_SECONDS (in the room, 3 decimals)."""
    return {"conference": room, "conference_result": result,
            "conference_seconds": f"{max(seconds, 0.0):.3f}"}


def queue_fields(queue: str, *, wait: float, position: int, agent: str | None) -> dict[str, str]:
    """The QUEUE_FIELDS of a caller's visit to `queue`: seconds waited (3 decimals, like
    dial_seconds), the position it entered at (1 = first in line; 0 = it never joined: full,
    empty) and the agent who answered ("" if nobody did)."""
    return {"queue": queue, "queue_wait": f"{max(wait, 0.0):.3f}",
            "queue_position": str(position), "agent": agent or ""}


def event_env(ev: Event, route_env: Mapping[str, str]) -> dict[str, str]:
    """The script's whole environment: BASE_ENV, then the route's env, then PBX_* (sanitised)."""
    env = dict(BASE_ENV)
    env.update(route_env)
    env["PBX_PROTOCOL"] = str(PROTOCOL_VERSION)
    for env_key, _, attr in _FIXED:
        env[env_key] = env_value(getattr(ev, attr))
    for key, value in ev.extra.items():
        env["PBX_" + key.upper()] = env_value(value)
    for name, value in ev.vars.items():
        env["PBX_VAR_" + env_name(name)] = env_value(value)
    return env


def event_dict(ev: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict with the raw (unsanitised) values."""
    out: dict[str, Any] = {"protocol": PROTOCOL_VERSION}
    for _, key, attr in _FIXED:
        out[key] = getattr(ev, attr)
    out.update(ev.extra)
    out["vars"] = dict(ev.vars)
    out["headers"] = dict(ev.headers)
    out["history"] = [{"event": h.event, "result": h.result} for h in ev.history]
    return out


def event_json(ev: Event) -> bytes:
    """One line of JSON for the script's stdin (ASCII-only: any byte-safe reader copes)."""
    return json.dumps(event_dict(ev), ensure_ascii=True).encode("ascii") + b"\n"


def event_from_dict(obj: Mapping[str, Any]) -> Event:
    """Inverse of event_dict (for replaying recorded events); ValueError if malformed."""
    if obj.get("protocol", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise ValueError(f"unsupported protocol {obj.get('protocol')!r}")
    fixed = {attr: obj.get(key, "") for _, key, attr in _FIXED}
    extra = {k: v for k, v in obj.items() if k not in _RESERVED}
    maps = {k: obj.get(k, {}) for k in ("vars", "headers")}
    values = list(fixed.values()) + list(extra.values())
    for m in maps.values():
        if not isinstance(m, Mapping):
            raise ValueError("vars and headers must be objects")
        values += list(m.values())
    if not all(isinstance(v, str) for v in values) or not fixed["name"]:
        raise ValueError("event fields must be strings and 'event' must be set")
    history = obj.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, Mapping) for h in history):
        raise ValueError("history must be an array of objects")
    return Event(
        **fixed,
        vars=dict(maps["vars"]),
        headers=dict(maps["headers"]),
        extra=extra,
        history=tuple(HistoryEntry(str(h.get("event", "")), str(h.get("result", "")))
                      for h in history),
    )
