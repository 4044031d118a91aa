"""An interactive call without SIP: the script's events come from a person at a terminal.

Theory of operation: the script runs for `incoming` through the real transport; its actions are
shown; if the list ends with an action that has an outcome, the person supplies that outcome
(gather: the keys pressed, nothing for a timeout; record: how it ended and how long; queue:
answered by an agent, or why the caller left, how long it waited; conference: how the caller
left the room, or why it never got in; goto is followed by itself) and it becomes the next event, as the switch would make it. `h` at any
question is the caller hanging up. Every call ends with the `hangup` event. The session is kept
as fixture steps, so `--save` turns it into a regression test.

The terminal is not known here: questions and output go through :class:`SimIO` (the CLI
implements it with click; tests with a list of answers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pbxcore.script.actions import (
    CONFERENCE_RESULTS,
    Action,
    Conference,
    Gather,
    Goto,
    Queue,
    Record,
    Reject,
    Voicemail,
)
from pbxcore.script.events import QUEUE_RESULTS, Event, conference_fields, queue_fields
from pbxcore.script.runner import RunResult
from pbxcore.script.transports import ProcessTransport, ScriptTransport
from pbxcore.testing.capture import call_dict, fixture_dict, relative, step_dict
from pbxcore.testing.state import (
    ENDS_CALL,
    CallState,
    after_call,
    goto_target,
    outcome_action,
    script_name,
)

HANG_UP = "h"
RECORD_RESULTS = ("finishkey", "silence", "maxtime")
QUEUE_CHOICES = ("answered", *QUEUE_RESULTS)
VOICEMAIL_CHOICES = ("saved", "too_short", "full")
"""How a simulated queue ends: an agent answered (then the call ends), or a `queue` event."""


class SimIO(Protocol):
    """Where the simulation talks to a person."""

    def show(self, kind: str, text: str) -> None:
        """kind: event | action | error | stderr | info."""

    def ask(self, question: str, default: str = "") -> str:
        """One answer (stripped); `default` when the person just presses Enter."""


@dataclass(frozen=True)
class _Next:
    name: str
    result: str = ""
    digits: str = ""
    recording: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    cause: str = ""
    """For hangup: the cause the switch would give."""


@dataclass
class Session:
    """What happened: one (script, event, run result) per script run."""

    runs: list[tuple[Path, Event, RunResult]] = field(default_factory=list)

    def fixture(self, path: Path, *, name: str, timeout: float,
                env: Mapping[str, str], scripts: Path) -> dict[str, Any]:
        """The session as a fixture saved at `path` (replays green against the same script)."""
        base = path.absolute().parent
        steps = [step_dict(ev, actions=[a.to_text() for a in rr.actions],
                           error=None if rr.ok else rr.error)
                 for _, ev, rr in self.runs]
        extra: dict[str, Any] = {}
        if any(isinstance(outcome_action(rr.actions), Goto) for _, _, rr in self.runs if rr.ok):
            extra["scripts"] = relative(scripts, base)
        first_script, first_event, _ = self.runs[0]
        return fixture_dict(name=name, script=relative(first_script, base),
                            call=call_dict(first_event), steps=steps, timeout=timeout,
                            env=env, extra=extra)


class Simulator:
    """One simulated call; `await run()` drives it to the end."""

    def __init__(self, script: Path, io: SimIO, *, caller: str, called: str,
                 caller_name: str = "", language: str = "en", route: str = "",
                 env: Mapping[str, str] | None = None, timeout: float = 5.0,
                 scripts: Path | None = None, transport: ScriptTransport | None = None,
                 clock: Callable[[], float] = time.monotonic, max_steps: int = 200) -> None:
        self.script = script
        self.scripts = scripts or script.parent
        self.io = io
        self.env = dict(env or {})
        self.timeout = timeout
        self.transport = transport or ProcessTransport()
        self.clock = clock
        self.max_steps = max_steps
        self.state = CallState(call_id="simulated", caller=caller, caller_name=caller_name,
                               called=called, route=route, language=language)
        self.session = Session()
        self.started = clock()
        self.answered_at: float | None = None
        self.recordings = 0

    async def run(self) -> Session:
        nxt: _Next | None = _Next("incoming")
        for _ in range(self.max_steps):
            if nxt is None:
                break
            nxt = await self._step(nxt)
        else:
            self.io.show("error", f"more than {self.max_steps} steps: stopped")
        return self.session

    async def _step(self, nxt: _Next) -> _Next | None:
        extra = dict(nxt.extra)
        if nxt.name == "hangup":
            extra.update(self._hangup_fields(nxt))
        ev = self.state.event(nxt.name, result=nxt.result, digits=nxt.digits,
                              recording=nxt.recording, extra=extra)
        self.io.show("event", _describe(ev))
        rr = await self.transport.run(self.script, ev, env=self.env, timeout=self.timeout)
        self.session.runs.append((self.script, ev, rr))
        self.state.ran(ev, rr.actions if rr.ok else [])
        if not rr.ok:
            self.io.show("error", f"script error: {rr.error}")
            if rr.stderr.strip():
                self.io.show("stderr", rr.stderr.decode("utf-8", "replace").rstrip("\n"))
        for action in rr.actions:
            self.io.show("action", action.to_text())
        if nxt.name == "hangup":
            return None
        if after_call(nxt.name, nxt.result):
            return _Next("hangup", "caller", cause="BYE from caller")
        if not rr.ok:
            return _Next("hangup", "switch", cause="script failed")
        return self._outcome(rr.actions)

    def _outcome(self, actions: list[Action]) -> _Next | None:
        for action in actions:
            if action.verb in ENDS_CALL:
                break
            if action.verb == "answer" or action.needs_answer:
                self._answer()
        for action in actions:
            if action.verb == "hangup":
                return _Next("hangup", "script", cause="hangup action")
            if isinstance(action, Reject):
                return _Next("hangup", "script", cause=f"rejected with {action.status}")
        last = outcome_action(actions)
        if last is None:
            self.io.show("info", "the action list ended: the switch hangs up")
            return _Next("hangup", "script", cause="end of actions")
        if isinstance(last, Gather):
            return self._gather(last)
        if isinstance(last, Record):
            return self._record(last)
        if isinstance(last, Goto):
            return self._goto(last)
        if isinstance(last, Queue):
            return self._queue(last)
        if isinstance(last, Conference):
            return self._conference(last)
        if isinstance(last, Voicemail):
            return self._voicemail(last)
        self.io.show("info", f"{last.verb}: not simulated yet; the switch hangs up")
        return _Next("hangup", "switch", cause=f"{last.verb} not simulated")

    def _answer(self) -> None:
        if self.answered_at is None:
            self.answered_at = self.clock()

    def _gather(self, g: Gather) -> _Next:
        keys = self.io.ask(f"keys for gather (max {g.max}, Enter = timeout, {HANG_UP} = hang up)")
        if keys == HANG_UP:
            return _Next("hangup", "caller", cause="BYE from caller")
        keys = "".join(k for k in keys if k in "0123456789*#")
        if g.finish and g.finish in keys:
            keys = keys[:keys.index(g.finish)]
        keys = keys[:g.max]
        if not keys:
            return _Next("gather", "timeout")
        return _Next("gather", "ok" if len(keys) >= g.min else "short", digits=keys)

    def _record(self, r: Record) -> _Next:
        how = ""
        while how not in (*RECORD_RESULTS, HANG_UP):
            how = self.io.ask(f"record ended by ({'/'.join(RECORD_RESULTS)}, {HANG_UP} = "
                              "caller hangs up)", "finishkey")
        seconds = self.io.ask("seconds recorded", "3")
        try:
            length = min(max(float(seconds), 0.0), r.max)
        except ValueError:
            length = 3.0
        self.recordings += 1
        recording = f"simulated/{self.state.call_id}-{self.recordings}.wav"
        return _Next("record", "hangup" if how == HANG_UP else how, recording=recording,
                     extra={"recording_seconds": f"{length:.1f}"})

    def _voicemail(self, v: Voicemail) -> _Next:
        how = ""
        while how not in (*VOICEMAIL_CHOICES, HANG_UP):
            how = self.io.ask(f"voicemail {v.box} ended by ({'/'.join(VOICEMAIL_CHOICES)}, "
                              f"{HANG_UP} = caller hangs up)", "saved")
        kept = how in ("saved", HANG_UP)
        self.recordings += 1
        recording = f"simulated/voicemail/{v.box}/{self.state.call_id}-{self.recordings}.wav"
        return _Next("voicemail", "hangup" if how == HANG_UP else how,
                     recording=recording if kept else "",
                     extra={"recording_seconds": "5.0" if kept else "0.0",
                            "voicemail_box": v.box})

    def _number(self, question: str, default: str, low: float, high: float) -> float:
        try:
            return min(max(float(self.io.ask(question, default)), low), high)
        except ValueError:
            return float(default)

    def _queue(self, q: Queue) -> _Next:
        how = ""
        while how not in (*QUEUE_CHOICES, HANG_UP):
            how = self.io.ask(f"queue {q.name} ended by ({'/'.join(QUEUE_CHOICES)}, "
                              f"{HANG_UP} = caller hangs up)", "answered")
        wait = 0.0 if how == "full" else self._number("seconds waited", "10", 0.0, 86400.0)
        position = int(self._number("position on entry (0 = never joined)",
                                    "0" if how == "full" else "1", 0, 10000))
        agent = self.io.ask("agent extension who answered", "1001") if how == "answered" else ""
        fields = queue_fields(q.name, wait=wait, position=position, agent=agent)
        if how == HANG_UP:
            return _Next("hangup", "caller", cause="BYE from caller", extra=fields)
        if how == "answered":
            # Bridged like dial: the script hears of the call again only at its end.
            by = ""
            while by not in ("caller", "callee"):
                by = self.io.ask("who hangs up (caller/callee)", "caller")
                by = "caller" if by == HANG_UP else by  # h (or the end of input): the caller
            talk = self._number("seconds talked", "30", 0.0, 86400.0)
            return _Next("hangup", by, cause=f"BYE from {by}",
                         extra={**fields, "talk_seconds": f"{talk:.3f}"})
        digits = ""
        if how == "exit_key":
            digits = self.io.ask("key pressed", (q.exit_key or "0")[0])[:1]
            if digits == HANG_UP:
                return _Next("hangup", "caller", cause="BYE from caller", extra=fields)
            if not q.exit_key or digits not in q.exit_key:
                self.io.show("info", f"{digits!r} is not one of exit_key={q.exit_key or ''}: "
                             "the live switch would not have let the caller out")
        if how == "callback":  # the live switch calls back the caller's own number
            number = self.io.ask("number to call back", self.state.caller)
            if number == HANG_UP:
                return _Next("hangup", "caller", cause="BYE from caller", extra=fields)
            fields = {**fields, "callback_number": number}
        return _Next("queue", how, digits=digits, extra=fields)

    def _conference(self, c: Conference) -> _Next:
        choices = ("left", "kicked", "ended", *CONFERENCE_RESULTS)
        how = ""
        while how not in (*choices, HANG_UP):
            how = self.io.ask(f"conference {c.room} ended by ({'/'.join(choices)}; left or "
                              f"{HANG_UP} = caller hangs up)", "left")
        how = "left" if how == HANG_UP else how
        if how in CONFERENCE_RESULTS:  # never got in: the `conference` event
            return _Next("conference", how, extra=conference_fields(c.room, how, 0.0))
        seconds = self._number("seconds in the room", "60", 0.0, 86400.0)
        fields = conference_fields(c.room, how, seconds)
        if how == "left":
            return _Next("hangup", "caller", cause="BYE from caller", extra=fields)
        return _Next("hangup", "switch", cause=f"conference {c.room}: {how}", extra=fields)

    def _goto(self, g: Goto) -> _Next | None:
        try:
            target = goto_target(g, self.scripts)
        except ValueError as exc:
            self.io.show("error", str(exc))
            return _Next("hangup", "switch", cause=str(exc))
        source = script_name(self.script, self.scripts)
        self.io.show("info", f"goto: {source} hands the call to {g.script}")
        self.script = target
        return _Next("redirect", source)

    def _hangup_fields(self, nxt: _Next) -> dict[str, str]:
        now = self.clock()
        billsec = now - self.answered_at if self.answered_at is not None else 0.0
        if self.answered_at is not None:
            disposition = "answered"
        elif nxt.result == "caller":
            disposition = "abandoned"
        else:
            disposition = "rejected" if nxt.cause.startswith("rejected") else "failed"
        return {"hangup_cause": nxt.cause, "duration": f"{now - self.started:.3f}",
                "billsec": f"{billsec:.3f}", "disposition": disposition}


def _describe(ev: Event) -> str:
    parts = [ev.name] + [f"{k}={v}" for k, v in (("result", ev.result), ("digits", ev.digits),
                                                 ("recording", ev.recording)) if v]
    parts += [f"{k}={v}" for k, v in ev.extra.items()]
    if ev.vars:
        parts.append("vars " + " ".join(f"{k}={v}" for k, v in ev.vars.items()))
    return " ".join(parts)
