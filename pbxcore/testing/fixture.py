"""Fixture format v1: one JSON file = one call replayed against a script, step by step.

docs/testing-scripts.md is the reference of the format; this module is its loader. A fixture is
validated completely before anything runs, and every problem is reported with the file and the
place in it: ``fixture.json: steps[2].expect[0]: line 1: unknown action 'plya'``. Unknown keys
are errors too (a typo such as "expcet" must not make a step pass silently).

Parsing is pure (:func:`parse_fixture` takes the decoded JSON); :func:`load_fixture` and
:func:`find_fixtures` read files.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxcore.script.actions import ActionError
from pbxcore.script.events import Event
from pbxcore.testing.matching import MATCH_MODES, ExpectedAction, expected_action

FORMAT_VERSION = 1
TRANSPORTS = ("process", "worker", "webhook")
_TOP = ("pbxcore_fixture", "name", "script", "scripts", "transport", "worker", "url", "timeout",
        "env", "call", "steps")
_CALL = ("caller", "caller_name", "called", "language", "route", "call_id", "vars", "headers")
_STEP = ("event", "result", "digits", "recording", "extra", "vars", "expect", "expect_error")
_EVENT_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FixtureError(ValueError):
    """A fixture file that is not valid fixture format v1."""

    def __init__(self, path: str, where: str, message: str) -> None:
        super().__init__(f"{path}: {where + ': ' if where else ''}{message}")
        self.path = path
        self.where = where
        """JSON path of the bad value, e.g. steps[2].expect (empty for the whole file)."""
        self.message = message


@dataclass(frozen=True)
class Expect:
    """What a step's output must be."""

    match: str
    """exact | prefix | subset | contains."""
    actions: tuple[ExpectedAction, ...]
    explicit: bool = False
    """The mode was named in the fixture (then `*` globs are allowed)."""


@dataclass(frozen=True)
class Step:
    """One event sent to the script and what must come back."""

    event: str
    result: str = ""
    digits: str = ""
    recording: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Event-specific fields: key k becomes PBX_K and JSON "k"."""
    vars: Mapping[str, str] | None = None
    """When set: the call variables of this event, instead of those carried from earlier steps."""
    expect: Expect | None = None
    expect_error: str | None = None
    """A substring of the runner's error (the step must fail)."""


@dataclass(frozen=True)
class CallData:
    """The fields every event of the call shares."""

    caller: str = ""
    caller_name: str = ""
    called: str = ""
    language: str = "en"
    route: str = ""
    call_id: str = "fixture"
    vars: Mapping[str, str] = field(default_factory=dict)
    """Call variables before the first step."""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fixture:
    """A loaded, validated fixture; paths are resolved against the fixture's directory."""

    path: Path
    name: str
    script: Path
    scripts: Path
    """Directory `goto SCRIPT` is resolved in (default: the script's directory)."""
    transport: str = "process"
    worker: Path | None = None
    url: str | None = None
    timeout: float = 5.0
    env: Mapping[str, str] = field(default_factory=dict)
    """The route's env: added to the script's environment."""
    call: CallData = field(default_factory=CallData)
    steps: tuple[Step, ...] = ()


class _Checker:
    def __init__(self, shown: str) -> None:
        self.shown = shown

    def fail(self, where: str, message: str) -> FixtureError:
        return FixtureError(self.shown, where, message)

    def keys(self, obj: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.fail(where, f"must be an object, got {_kind(obj)}")
        for key in obj:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(where, f"unknown key {key!r}{hint}")
        return obj

    def text(self, obj: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
        value = obj.get(key, default)
        if not isinstance(value, str):
            raise self.fail(_at(where, key), f"must be a string, got {_kind(value)}")
        return value

    def strings(self, obj: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
        value = obj.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(_at(where, key), f"must be an object, got {_kind(value)}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.fail(f"{_at(where, key)}.{k}", f"must be a string, got {_kind(v)}")
        return dict(value)


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def is_fixture_data(obj: Any) -> bool:
    """Is this decoded JSON meant to be a fixture (has the "pbxcore_fixture" key)?"""
    return isinstance(obj, dict) and "pbxcore_fixture" in obj


def parse_fixture(obj: Any, path: Path, *, shown: str | None = None) -> Fixture:
    """Validate decoded JSON as fixture format v1; `path` is the file (for relative paths)."""
    c = _Checker(shown if shown is not None else str(path))
    top = c.keys(obj, "", _TOP)
    version = top.get("pbxcore_fixture")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise c.fail("pbxcore_fixture", f"unsupported fixture format {version!r} "
                                        f"(this pbxcore reads {FORMAT_VERSION})")
    base = path.absolute().parent
    name = c.text(top, "name", "", path.stem) or path.stem
    if "script" not in top:
        raise c.fail("script", "missing (the script to run, relative to this file)")
    script_rel = c.text(top, "script", "")
    if not script_rel:
        raise c.fail("script", "must not be empty")
    script = base / script_rel
    scripts = base / c.text(top, "scripts", "") if "scripts" in top else script.parent
    transport = c.text(top, "transport", "", "process")
    if transport not in TRANSPORTS:
        raise c.fail("transport", f"must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    worker = base / c.text(top, "worker", "") if "worker" in top else None
    url = c.text(top, "url", "") if "url" in top else None
    if transport == "webhook" and not (url or "").startswith(("http://", "https://")):
        raise c.fail("url", "the webhook transport needs \"url\": \"http://...\"")
    timeout = top.get("timeout", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or \
            not 0 < timeout <= 600:
        raise c.fail("timeout", f"must be a number of seconds 0..600, got {timeout!r}")
    env = c.strings(top, "env", "")
    for key in env:
        if not _ENV_RE.fullmatch(key) or key.startswith("PBX_"):
            raise c.fail(f"env.{key}", "names are [A-Za-z_][A-Za-z0-9_]* and not PBX_* "
                                       "(the switch sets those)")
    call = _call(c, top.get("call", {}))
    steps = top.get("steps")
    if not isinstance(steps, list) or not steps:
        raise c.fail("steps", "must be a non-empty array of steps")
    return Fixture(path=path, name=name, script=script, scripts=scripts, transport=transport,
                   worker=worker, url=url, timeout=float(timeout), env=env, call=call,
                   steps=tuple(_step(c, s, f"steps[{i}]") for i, s in enumerate(steps)))


def _call(c: _Checker, obj: Any) -> CallData:
    call = c.keys(obj, "call", _CALL)
    fields = {k: c.text(call, k, "call") for k in _CALL[:6] if k in call}
    return CallData(**fields, vars=c.strings(call, "vars", "call"),
                    headers=c.strings(call, "headers", "call"))


def _step(c: _Checker, obj: Any, where: str) -> Step:
    step = c.keys(obj, where, _STEP)
    if "event" not in step:
        raise c.fail(where, "missing \"event\" (incoming, gather, record, redirect, hangup, ...)")
    event = c.text(step, "event", where)
    if not _EVENT_RE.fullmatch(event):
        raise c.fail(f"{where}.event", f"must be an event name such as gather, got {event!r}")
    extra = c.strings(step, "extra", where)
    try:
        Event(event, "check", extra=extra)
    except ValueError as exc:
        raise c.fail(f"{where}.extra", f"{exc} (keys are lower-case names, not the fixed "
                                       "fields)") from None
    has_expect, has_error = "expect" in step, "expect_error" in step
    if has_expect == has_error:
        raise c.fail(where, "needs exactly one of \"expect\" (the actions) or \"expect_error\"")
    expect_error = None
    if has_error:
        expect_error = c.text(step, "expect_error", where)
        if not expect_error:
            raise c.fail(f"{where}.expect_error", "must not be empty")
    return Step(
        event=event, result=c.text(step, "result", where), digits=c.text(step, "digits", where),
        recording=c.text(step, "recording", where), extra=extra,
        vars=c.strings(step, "vars", where) if "vars" in step else None,
        expect=_expect(c, step["expect"], f"{where}.expect") if has_expect else None,
        expect_error=expect_error)


def _expect(c: _Checker, obj: Any, where: str) -> Expect:
    mode, explicit, items, at = "exact", False, obj, where
    if isinstance(obj, dict):
        c.keys(obj, where, ("match", "actions"))
        mode = c.text(obj, "match", where, "exact")
        if mode not in MATCH_MODES:
            raise c.fail(f"{where}.match", f"must be one of {', '.join(MATCH_MODES)}, "
                                           f"got {mode!r}")
        explicit, items, at = "match" in obj, obj.get("actions"), f"{where}.actions"
    if not isinstance(items, list):
        raise c.fail(at, f"must be an array of action lines, got {_kind(items)}")
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, str | dict):
            raise c.fail(f"{at}[{i}]", f"must be an action line or object, got {_kind(item)}")
        try:
            parsed.append(expected_action(item, glob=explicit))
        except ActionError as exc:
            raise c.fail(f"{at}[{i}]", exc.message) from None
        except ValueError as exc:
            raise c.fail(f"{at}[{i}]", str(exc)) from None
    return Expect(mode, tuple(parsed), explicit)


def read_json(path: Path, shown: str | None = None) -> Any:
    """The decoded file; FixtureError if it cannot be read or is not JSON."""
    label = shown if shown is not None else str(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(label, "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FixtureError(label, "", "not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise FixtureError(label, "", f"line {exc.lineno}: invalid JSON: {exc.msg}") from None


def load_fixture(path: Path, shown: str | None = None) -> Fixture:
    """Read and validate one fixture file (FixtureError on any problem)."""
    label = shown if shown is not None else str(path)
    obj = read_json(path, label)
    if not is_fixture_data(obj):
        raise FixtureError(label, "", "not a pbxcore fixture (no \"pbxcore_fixture\" key)")
    return parse_fixture(obj, path, shown=label)


def looks_like_fixture(path: Path) -> bool:
    """A *.json file whose top-level object has the "pbxcore_fixture" key."""
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        return is_fixture_data(read_json(path))
    except FixtureError:
        return False


def find_fixtures(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories searched recursively for fixture *.json files, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json") if looks_like_fixture(p))
        else:
            found.append(path)
    return found
