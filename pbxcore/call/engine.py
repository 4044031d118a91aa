"""The CGI loop of one call: run the script for an event, execute its actions, repeat.

Theory of operation (docs/protocol.md is the contract this implements):
1. The call arrives: the caller hears ringing (180) and the route's script runs for `incoming`.
2. Its actions run in order.  An action with an outcome (gather, record, goto, dial, queue)
   ends the list; the outcome becomes the next event, for the same script (or the `goto`
   target).  Fields a queue visit leaves (PBX_QUEUE*) are carried by every later event.
3. A list that ends without an outcome ends the call (like a dialplan running off its end).
4. A failed run (timeout, bad output, exit status, missing script) is traced and recorded in the
   CDR, and the route's fallback actions run instead: the call is never silently dropped.
5. When the call ends, whatever the reason, the script gets exactly one `hangup` event (unless the
   route says `hangup_event = false`), and the CDR is closed.
While a script runs the caller hears ringback before answer, hold music after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pbxcore.call.call import Call
from pbxcore.script.actions import Action, ActionError, parse_action_line
from pbxcore.script.events import Event, HistoryEntry, event_env, event_json
from pbxcore.script.runner import RunResult
from pbxcore.store.base import CdrEnd
from pbxcore.verbs import execute
from pbxcore.verbs.base import Outcome

log = logging.getLogger("pbxcore.call")

MAX_STEPS = 1000  # a script that loops forever through gather still ends, some day
AFTER_HANGUP = frozenset({"log", "set"})  # the only actions a hangup event's output may run
# How an action that takes time shows in `pbx calls` (instant ones leave the state as it was).
ACTIVITY = {"play": "playing", "say": "playing", "gather": "gathering digits",
            "record": "recording", "wait": "waiting", "dial": "dialling",
            "transfer": "dialling", "queue": "in queue"}


async def run_call(call: Call) -> None:
    """Drive `call` from its INVITE to its closed CDR.  Never raises for script faults."""
    # A call the switch answers itself (an agent's feature code) brings its own flow.
    body = call.flow(call) if call.flow is not None else _flow(call)
    flow: asyncio.Task[None] = asyncio.create_task(body, name=f"call-{call.info.call_id}")
    ended = asyncio.create_task(call.ended.wait())
    try:
        await asyncio.wait({flow, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (flow, ended):
            task.cancel()
        for task in (flow, ended):
            # An exception in the flow is our bug: reported below, and the call still gets
            # its hangup, its hangup event and its closed CDR.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if flow.done() and not flow.cancelled() and flow.exception() is not None:
            exc = flow.exception()
            log.error("call %s: internal error: %r", call.info.call_id, exc)
            call.script_errors.append(f"internal error: {exc!r}")
            call.note("error", {"error": f"internal error: {exc!r}"})
            if not call.ended.is_set():
                with contextlib.suppress(Exception):
                    await call.hangup()
        if not call.ended.is_set():
            await call.hangup()  # the action list ran off its end: the switch hangs up
        await asyncio.shield(_finish(call))


async def _flow(call: Call) -> None:
    script = call.script
    event = _event(call, "incoming")
    await call.ring()
    for _ in range(MAX_STEPS):
        result = await _run(call, script, event)
        call.actor = "script" if result.ok else "switch"
        actions = result.actions if result.ok else fallback_actions(call, result.error)
        outcome = await execute_all(call, actions)
        call.flush_trace()
        if outcome is None or call.ended.is_set():
            return
        if outcome.script is not None:
            next_script = outcome.script
            outcome = replace(outcome, result=_script_name(call, script))
            script = call.script = next_script
        call.history.append(HistoryEntry(event.name, event.result))
        event = _event(call, outcome.event, outcome)
    call.script_errors.append(f"more than {MAX_STEPS} script steps")


async def script_flow(call: Call) -> None:
    """The script loop on its own: what an originated call runs once its first party
    answered (call/originate.py)."""
    await _flow(call)


async def _run(call: Call, script: Path, event: Event) -> RunResult:
    """Run one script with ringback or hold music playing, and trace everything about it."""
    if call.answered:
        with contextlib.suppress(Exception):  # no moh prompt: the caller hears silence
            call.media.set_background(call.sound(call.route.hold_music or "moh"))
    call.doing("in script", script.name)
    try:
        # A goto leaves the route's transport: the target script runs as a process per event.
        own = script == call.route.script
        transport = (call.deps.transports.for_route(call.route) if own
                     else call.deps.transports.process)
        result = await transport.run(script, event, env=call.route.env,
                                     timeout=call.route.timeout)
        call.deps.stats.script_ran(call.route.transport if own else "process", result.duration,
                                   result.ok, time.monotonic())
    finally:
        if call.answered:
            call.media.set_background(None)
    call.note("script", {
        "script": str(script), "event": event.name,
        "env": event_env(event, call.route.env), "stdin": event_json(event).decode(),
        "stdout": result.stdout.decode(errors="replace"),
        "stderr": result.stderr.decode(errors="replace"),
        "exit": result.exit_status, "duration": round(result.duration, 6), "error": result.error,
    })
    if not result.ok:
        message = f"{script.name} ({event.name}): {result.error}"
        log.warning("call %s: script failed: %s", call.info.call_id, message)
        call.script_errors.append(message)
        call.persist_cdr(lambda: call.deps.store.cdr_append(call.info.call_id, "script_errors",
                                                            message))
    return result


def fallback_actions(call: Call, because: str | None) -> list[Action]:
    """The route's fallback, parsed; run when the script failed (or a transfer had nowhere
    left to go)."""
    actions: list[Action] = []
    for line in call.route.fallback:
        try:
            actions.append(parse_action_line(line))
        except ActionError as exc:  # `pbx check` refuses this; keep the call alive regardless
            call.note("error", {"fallback": line, "error": str(exc)})
    call.note("note", {"fallback": list(call.route.fallback), "because": because})
    return actions


async def execute_all(call: Call, actions: list[Action]) -> Outcome | None:
    """Run actions in order until one has an outcome or the call ends; faults are traced."""
    for action in actions:
        if call.ended.is_set():
            return None
        call.note("action", {"action": action.to_text()})
        if action.verb in ACTIVITY:
            call.doing(ACTIVITY[action.verb], action.to_text().partition(" ")[2][:120])
        try:
            outcome = await execute(call, action)
        except (ActionError, ValueError, OSError) as exc:
            # A bad file name, a missing prompt: the script's fault, traced; the call goes on.
            call.note("error", {"action": action.to_text(), "error": str(exc)})
            call.script_errors.append(f"{action.to_text()}: {exc}")
            continue
        if outcome is not None:
            return outcome
    return None


async def inform(call: Call, outcome: Outcome) -> None:
    """Tell the script about an event it cannot act on (after the hangup, or a transfer during
    a bridge); only its `log` and `set` actions still apply."""
    with contextlib.suppress(Exception):
        result = await _run(call, call.script, _event(call, outcome.event, outcome))
        for action in result.actions:
            if action.verb in AFTER_HANGUP:
                await execute(call, action)


def _script_name(call: Call, script: Path) -> str:
    """How a script is named to another (`redirect` result): relative to the scripts dir."""
    scripts = call.deps.config.paths.scripts.resolve()
    resolved = script.resolve()
    return str(resolved.relative_to(scripts)) if scripts in resolved.parents else script.name


def _event(call: Call, name: str, outcome: Outcome | None = None) -> Event:
    info = call.info
    # Fields carried from earlier events (PBX_QUEUE*), then this outcome's own.
    extra = {**call.carried, **(outcome.extra if outcome else {})}
    return Event(
        name=name, call_id=info.call_id, caller=info.caller, caller_name=info.caller_name,
        called=info.called, route=call.route.name, language=call.language,
        vars=dict(call.vars), headers=dict(info.headers),
        result=outcome.result if outcome else "",
        digits=(outcome.digits or "") if outcome else "",
        recording=(outcome.recording or "") if outcome else "",
        extra=extra, history=tuple(call.history),
    )


async def _finish(call: Call) -> None:
    """Close media, tell the script (hangup event), close the CDR.  Runs exactly once."""
    await call.close_media()
    end = datetime.now(UTC)
    if call.background:
        results = await asyncio.gather(*call.background, return_exceptions=True)
        for failed in (r for r in results if isinstance(r, BaseException)):
            call.note("error", {"error": f"background work failed: {failed!r}"})
    if call.pending is not None:
        await inform(call, call.pending)
    if call.route.hangup_event:
        duration = (end - call.info.started).total_seconds()
        billsec = (end - call.answered_at).total_seconds() if call.answered_at else 0.0
        extra = {"hangup_cause": call.hangup_cause, "duration": f"{duration:.3f}",
                 "billsec": f"{billsec:.3f}", "disposition": call.disposition()}
        if call.talk_seconds is not None:
            extra["talk_seconds"] = f"{call.talk_seconds:.3f}"
        await inform(call, Outcome("hangup", result=call.hangup_by or "switch",
                                          extra=extra))
    call.flush_trace()
    await call.close_cdr(CdrEnd(
        end=end, disposition=call.disposition(),  # type: ignore[arg-type]
        hangup_by=call.hangup_by or "switch",  # type: ignore[arg-type]
        hangup_cause=call.hangup_cause, hangup_code=call.hangup_code,
        recordings=tuple(call.recordings), script_errors=tuple(call.script_errors),
        vars=dict(call.vars),
    ))
