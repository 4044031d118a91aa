"""The call as the switch would see it between events: variables, history, script in charge.

This mirrors pbxcore/call/engine.py so a replayed (or simulated) call hands the script the same
events a live call would:

* variables: `set` lines act in order, as the verbs run them; an action that ends the call
  (`hangup`, `reject`) stops the list, so a `set` after it never happens. After the call ended
  (the `hangup` event, a `record` event with result `hangup`) only `log` and `set` act, so every
  `set` of that output applies.
* history: the engine adds an event to the history when its action list ended with an outcome
  and the call goes on to the next event in the flow. Events that arrive after the call ended
  (`hangup`, `record` with result `hangup`) never enter it, and neither does the event whose
  actions ended the call. So event N+1 carries event N only if N+1 is a flow event.
* goto: the target (relative to the scripts directory) takes over for the next events, and the
  `redirect` event's result names the script that did the `goto`.
* queue: the fields of a caller's visit to a queue (QUEUE_FIELDS: queue, queue_wait,
  queue_position, agent), once an event has them, are carried by every later event, as the
  engine carries them; a later event's own values replace them.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pbxcore.script.actions import Action, Goto, Set
from pbxcore.script.events import QUEUE_FIELDS, Event, HistoryEntry

ENDS_CALL = frozenset({"hangup", "reject"})
"""Verbs after which the live switch runs no further action of the list."""


def after_call(name: str, result: str) -> bool:
    """Does this event reach the script after the call is over?"""
    return name == "hangup" or (name in ("record", "voicemail") and result == "hangup")


@dataclass
class CallState:
    """Variables, history and the current script of one replayed call."""

    call_id: str
    caller: str = ""
    caller_name: str = ""
    called: str = ""
    route: str = ""
    language: str = "en"
    headers: Mapping[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    previous: HistoryEntry | None = None
    """The last event run, not yet in the history."""
    carried: dict[str, str] = field(default_factory=dict)
    """QUEUE_FIELDS seen so far: every later event carries them."""

    def event(self, name: str, *, result: str = "", digits: str = "", recording: str = "",
              extra: Mapping[str, str] | None = None,
              vars: Mapping[str, str] | None = None) -> Event:
        """The next event to send; `vars` replaces the carried variables (a fixture override)."""
        if self.previous is not None and not after_call(name, result):
            self.history.append(self.previous)
        self.previous = None
        if vars is not None:
            self.vars = dict(vars)
        fields = {**self.carried, **(extra or {})}
        self.carried.update({k: v for k, v in fields.items() if k in QUEUE_FIELDS})
        return Event(
            name=name, call_id=self.call_id, caller=self.caller, caller_name=self.caller_name,
            called=self.called, route=self.route, language=self.language, vars=dict(self.vars),
            headers=dict(self.headers), result=result, digits=digits, recording=recording,
            extra=fields, history=tuple(self.history))

    def ran(self, event: Event, actions: Sequence[Action]) -> None:
        """Account for the output of `event` (empty if the script failed)."""
        self.previous = HistoryEntry(event.name, event.result)
        late = after_call(event.name, event.result)
        for action in actions:
            if isinstance(action, Set):
                self.vars.update(action.vars)
            elif not late and action.verb in ENDS_CALL:
                break


def outcome_action(actions: Sequence[Action]) -> Action | None:
    """The action that ends the list with an outcome (gather, record, goto, dial...), if any."""
    for action in actions:
        if action.verb in ENDS_CALL:
            return None
        if action.has_outcome:
            return action
    return None


def goto_target(action: Goto, scripts: Path) -> Path:
    """Where `goto` leads, as the switch resolves it; ValueError outside the scripts directory."""
    base = scripts.resolve()
    target = (base / action.script).resolve()
    if base not in target.parents:
        raise ValueError(f"goto: {action.script!r} is outside the scripts directory")
    return target


def script_name(script: Path, scripts: Path) -> str:
    """How a script is named in the `redirect` result: relative to the scripts directory."""
    base, resolved = scripts.resolve(), script.resolve()
    return str(resolved.relative_to(base)) if base in resolved.parents else script.name
