"""A recorded call (the `script` entries of its trace) written as a fixture that replays green.

The engine traces every script run with the exact event it sent (`stdin`, the event JSON), the
environment, stdout, stderr and the error. So each run becomes one step: its event fields from
the JSON, and as expectation the actions it printed (or its error). The call data comes from
the first event, the route's env from the traced environment (without the PBX_* variables and
the switch's fixed base). Where the variables an event carried differ from what replaying the
earlier `set` lines gives (the caller hung up in the middle of an action list, so a `set` after
that point never ran), the step gets an explicit "vars". Pure: data in, JSON-ready dict out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pbxcore.script.actions import ActionError, parse_actions
from pbxcore.script.events import BASE_ENV, Event, event_from_dict
from pbxcore.testing.fixture import FORMAT_VERSION
from pbxcore.testing.state import CallState


class CaptureError(ValueError):
    """The trace has nothing to turn into a fixture (no script runs, unreadable entries)."""


def relative(path: Path | str, base: Path) -> str:
    """`path` relative to `base` (the fixture's folder), as the fixture stores it."""
    return os.path.relpath(Path(path).absolute(), base.absolute())


def route_env(env: Mapping[str, str]) -> dict[str, str]:
    """The route's part of a traced environment: no PBX_*, no unchanged base variables."""
    return {k: v for k, v in env.items()
            if not k.startswith("PBX_") and BASE_ENV.get(k) != v}


def call_dict(ev: Event) -> dict[str, Any]:
    """The fixture's "call" object for the events of one call (empty fields left out)."""
    out: dict[str, Any] = {"caller": ev.caller, "caller_name": ev.caller_name,
                           "called": ev.called, "language": ev.language, "route": ev.route,
                           "call_id": ev.call_id, "vars": dict(ev.vars),
                           "headers": dict(ev.headers)}
    return {k: v for k, v in out.items() if v or k in ("caller", "called")}


def step_dict(ev: Event, *, actions: Sequence[str] | None = None, error: str | None = None,
              vars: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One fixture step: the event's own fields, then what the script must print (or fail)."""
    step: dict[str, Any] = {"event": ev.name}
    for key in ("result", "digits", "recording"):
        if getattr(ev, key):
            step[key] = getattr(ev, key)
    if ev.extra:
        step["extra"] = dict(ev.extra)
    if vars is not None:
        step["vars"] = dict(vars)
    if error is not None:
        step["expect_error"] = error
    else:
        step["expect"] = list(actions or [])
    return step


def fixture_dict(*, name: str, script: str, call: Mapping[str, Any],
                 steps: Sequence[Mapping[str, Any]], timeout: float = 5.0,
                 env: Mapping[str, str] | None = None, transport: str = "process",
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A complete fixture object in the key order the documentation uses."""
    out: dict[str, Any] = {"pbxcore_fixture": FORMAT_VERSION, "name": name, "script": script}
    if transport != "process":
        out["transport"] = transport
    out.update(extra or {})
    out["timeout"] = timeout
    if env:
        out["env"] = dict(env)
    out["call"] = dict(call)
    out["steps"] = list(steps)
    return out


def fixture_from_trace(runs: Sequence[Mapping[str, Any]], *, fixture_dir: Path,
                       name: str | None = None, timeout: float = 5.0,
                       scripts_dir: Path | None = None, transport: str = "process",
                       worker: Path | None = None, url: str | None = None) -> dict[str, Any]:
    """Turn the data of a call's `script` trace entries (in order) into a fixture object."""
    if not runs:
        raise CaptureError("the call's trace has no script runs to capture")
    events: list[Event] = []
    for i, run in enumerate(runs):
        try:
            events.append(event_from_dict(json.loads(str(run["stdin"]))))
        except (KeyError, ValueError) as exc:
            raise CaptureError(f"script run {i + 1}: no readable event ({exc})") from None
    first = events[0]
    state = CallState(call_id=first.call_id, vars=dict(first.vars))
    steps = []
    gotos = False
    for run, ev in zip(runs, events, strict=True):
        override = dict(ev.vars) if dict(ev.vars) != state.vars else None
        replayed = state.event(ev.name, result=ev.result, vars=override)
        error = run.get("error")
        actions = []
        if error is None:
            try:
                actions = parse_actions(str(run.get("stdout", "")))
            except ActionError as exc:  # cannot happen for a run the switch accepted
                error = str(exc)
        gotos = gotos or any(a.verb == "goto" for a in actions)
        state.ran(replayed, actions)
        steps.append(step_dict(ev, actions=[a.to_text() for a in actions], error=error,
                               vars=override))
    extra: dict[str, Any] = {}
    if gotos and scripts_dir is not None:
        extra["scripts"] = relative(scripts_dir, fixture_dir)
    if transport == "worker" and worker is not None:
        extra["worker"] = relative(worker, fixture_dir)
    if transport == "webhook" and url:
        extra["url"] = url
    env = route_env(runs[0].get("env") or {})
    return fixture_dict(
        name=name or f"call {first.call_id}: {first.caller or '?'} to {first.called or '?'}",
        script=relative(str(runs[0]["script"]), fixture_dir), call=call_dict(first),
        steps=steps, timeout=timeout, env=env, transport=transport, extra=extra)
