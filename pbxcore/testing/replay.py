"""Replaying a fixture: every step through the switch's own script transport, checked.

Theory of operation: the fixture's call data and each step build a real
:class:`~pbxcore.script.events.Event`; the transport (the same class `pbx run` uses) runs the
script for it and returns a RunResult; the step's expectation is checked against the parsed
actions (or the error). Between steps the call state (variables, history, goto) moves on as in
the live switch (see state.py), using what the script actually printed, so a replay is the call
the switch would have had. A failed step does not stop the replay: later steps still run and
report, which usually shows whether one mistake or several are to blame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pbxcore.script.actions import Action, Goto
from pbxcore.script.events import Event
from pbxcore.script.runner import RunResult
from pbxcore.script.transports import ScriptTransport
from pbxcore.testing.fixture import Expect, Fixture, FixtureError, Step, load_fixture
from pbxcore.testing.matching import diff, match_list
from pbxcore.testing.state import CallState, goto_target, outcome_action
from pbxcore.testing.transport import TransportUnavailable, open_transport


@dataclass(frozen=True)
class StepResult:
    """What one step sent, what came back, and whether it is what the fixture expects."""

    index: int
    step: Step
    event: Event
    script: Path
    passed: bool
    actions: tuple[Action, ...] = ()
    error: str | None = None
    """The runner's error (timeout, exit status, bad output), None if the script ran fine."""
    stdout: str = ""
    stderr: str = ""
    exit_status: int | None = None
    duration: float = 0.0
    message: str = ""
    """Why the step failed (empty when it passed)."""
    diff: tuple[str, ...] = ()
    """Expected vs actual, one line each: '  ' same, '- ' expected only, '+ ' actual only."""


@dataclass(frozen=True)
class FixtureResult:
    """The outcome of one fixture file."""

    path: Path
    name: str
    steps: tuple[StepResult, ...] = ()
    error: str | None = None
    """Why it could not run at all (invalid fixture, unavailable transport)."""
    transport: str = "process"
    duration: float = 0.0
    shown: str = field(default="")
    """The path as the user gave it (for messages)."""

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed for s in self.steps)

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if not s.passed]


def check_step(index: int, step: Step, event: Event, script: Path,
               result: RunResult) -> StepResult:
    """Compare one RunResult with the step's expectation."""
    actions = tuple(result.actions)
    ok = StepResult(index=index, step=step, event=event, script=script, passed=True,
                    actions=actions, error=result.error,
                    stdout=result.stdout.decode("utf-8", "replace"),
                    stderr=result.stderr.decode("utf-8", "replace"),
                    exit_status=result.exit_status, duration=result.duration)
    if step.expect_error is not None:
        wanted = f"expected a script error containing {step.expect_error!r}"
        if result.ok:
            return replace(ok, passed=False, message=f"{wanted}, but the script succeeded",
                           diff=tuple(f"+ {a.to_text()}" for a in actions))
        if step.expect_error not in (result.error or ""):
            return replace(ok, passed=False, message=f"{wanted}, got {result.error!r}")
        return ok
    expect = step.expect
    assert expect is not None  # the loader guarantees expect or expect_error
    if not result.ok:
        return replace(ok, passed=False, message=f"script error: {result.error}",
                       diff=tuple(f"- {e.text}" for e in expect.actions))
    if match_list(expect.match, expect.actions, actions):
        return ok
    return replace(ok, passed=False, message=_mismatch(expect),
                   diff=tuple(diff(expect.match, expect.actions, actions)))


def _mismatch(expect: Expect) -> str:
    what = {"exact": "the actions differ",
            "prefix": "the output does not start with the expected actions",
            "contains": "the expected actions do not appear in the output as one run",
            "subset": "expected actions are missing from the output"}
    return f"{what[expect.match]} (match: {expect.match})"


async def run_fixture(fixture: Fixture, *, transport: ScriptTransport | None = None,
                      transport_name: str | None = None, shown: str = "") -> FixtureResult:
    """Replay every step; `transport` (owned by the caller) or one opened for the fixture."""
    kind = transport_name or fixture.transport
    started = time.monotonic()
    own = transport is None
    if transport is None:
        try:
            transport = open_transport(kind, script=fixture.script, worker=fixture.worker,
                                       url=fixture.url, env=fixture.env)
        except TransportUnavailable as exc:
            return FixtureResult(fixture.path, fixture.name, error=str(exc), transport=kind,
                                 shown=shown or str(fixture.path))
    try:
        steps = await _steps(fixture, transport)
    finally:
        if own:
            await transport.close()
    return FixtureResult(fixture.path, fixture.name, tuple(steps), transport=kind,
                         duration=time.monotonic() - started, shown=shown or str(fixture.path))


async def _steps(fixture: Fixture, transport: ScriptTransport) -> list[StepResult]:
    call = fixture.call
    state = CallState(call_id=call.call_id, caller=call.caller, caller_name=call.caller_name,
                      called=call.called, route=call.route, language=call.language,
                      headers=dict(call.headers), vars=dict(call.vars))
    script = fixture.script
    out: list[StepResult] = []
    for index, step in enumerate(fixture.steps):
        event = state.event(step.event, result=step.result, digits=step.digits,
                            recording=step.recording, extra=step.extra, vars=step.vars)
        result = await transport.run(script, event, env=fixture.env, timeout=fixture.timeout)
        out.append(check_step(index, step, event, script, result))
        state.ran(event, result.actions if result.ok else [])
        last = outcome_action(result.actions) if result.ok else None
        if isinstance(last, Goto):
            try:
                target = goto_target(last, fixture.scripts)
            except ValueError:
                continue  # the live switch traces this and goes on with the same script
            script = target
    return out


async def replay_path(path: Path, *, transport_name: str | None = None,
                      shown: str | None = None) -> FixtureResult:
    """Load and replay one file; an invalid fixture is a failed result, not an exception."""
    label = shown if shown is not None else str(path)
    try:
        fixture = load_fixture(path, label)
    except FixtureError as exc:
        return FixtureResult(path, path.stem, error=str(exc), shown=label,
                             transport=transport_name or "process")
    return await run_fixture(fixture, transport_name=transport_name, shown=label)


async def replay_paths(paths: Sequence[Path], *, transport_name: str | None = None,
                       labels: Sequence[str] | None = None) -> list[FixtureResult]:
    """Replay files one after another (scripts may share state such as a CRM file)."""
    shown = list(labels) if labels is not None else [str(p) for p in paths]
    return [await replay_path(p, transport_name=transport_name, shown=label)
            for p, label in zip(paths, shown, strict=True)]


def replay_file(path: Path | str, *, transport_name: str | None = None) -> FixtureResult:
    """Synchronous replay of one fixture file (not from inside a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(replay_path(Path(path), transport_name=transport_name))
    raise RuntimeError("replay_file() cannot run inside an event loop: "
                       "use `await replay_path(path)` there")
