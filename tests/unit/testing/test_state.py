"""The replayed call moves on like pbxcore/call/engine.py: vars, history, goto."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.script.actions import Goto, parse_actions
from pbxcore.script.events import HistoryEntry
from pbxcore.testing.state import CallState, goto_target, outcome_action, script_name


def test_set_lines_accumulate_until_the_call_ends() -> None:
    st = CallState("c1", vars={"A": "0"})
    ev = st.event("incoming")
    st.ran(ev, parse_actions("set A=1 B=1\nplay x\nset B=2\nhangup\nset C=3"))
    assert st.vars == {"A": "1", "B": "2"}
    ev = st.event("gather", result="ok")
    assert ev.vars == {"A": "1", "B": "2"}
    st.ran(ev, parse_actions("reject busy\nset D=1"))
    assert "D" not in st.vars


def test_after_the_call_every_set_applies() -> None:
    st = CallState("c1")
    st.ran(st.event("hangup", result="caller"), parse_actions("set X=1\nhangup\nset Y=2"))
    assert st.vars == {"X": "1", "Y": "2"}
    st.ran(st.event("record", result="hangup"), parse_actions("reject busy\nset Z=3"))
    assert st.vars["Z"] == "3"


def test_a_failed_run_changes_nothing_but_still_counts_as_run() -> None:
    st = CallState("c1", vars={"A": "1"})
    st.ran(st.event("incoming"), [])
    ev = st.event("gather", result="timeout")
    assert ev.vars == {"A": "1"} and ev.history == (HistoryEntry("incoming", ""),)


def test_history_holds_the_flow_events_before_this_one() -> None:
    st = CallState("c1")
    seen = []
    for name, result in [("incoming", ""), ("gather", "ok"), ("redirect", "a.sh"),
                         ("gather", "timeout"), ("hangup", "script")]:
        ev = st.event(name, result=result)
        seen.append([h.event for h in ev.history])
        st.ran(ev, [])
    # The last gather ended the call, so (as in the engine) the hangup event does not list it.
    assert seen == [[], ["incoming"], ["incoming", "gather"],
                    ["incoming", "gather", "redirect"], ["incoming", "gather", "redirect"]]


def test_events_after_the_call_never_enter_history() -> None:
    # incoming -> record; the caller hangs up while recording: the engine's flow is cancelled
    # inside the record action, so not even `incoming` was added to the history.
    st = CallState("c1")
    st.ran(st.event("incoming"), [])
    record = st.event("record", result="hangup")
    st.ran(record, [])
    assert record.history == () and st.event("hangup", result="caller").history == ()


def test_step_vars_override_the_carried_ones() -> None:
    st = CallState("c1", vars={"A": "1"})
    assert st.event("gather", vars={"B": "2"}).vars == {"B": "2"}
    assert st.vars == {"B": "2"}


def test_outcome_action() -> None:
    assert outcome_action(parse_actions("play a\ngather")).verb == "gather"  # type: ignore[union-attr]
    assert outcome_action(parse_actions("play a")) is None
    assert outcome_action(parse_actions("hangup")) is None


def test_goto_target_stays_in_the_scripts_directory(tmp_path: Path) -> None:
    assert goto_target(Goto("sales/b.sh"), tmp_path) == (tmp_path / "sales" / "b.sh").resolve()
    (tmp_path / "in").mkdir()
    with pytest.raises(ValueError, match="outside the scripts directory"):
        goto_target(Goto("in/../../x.sh"), tmp_path / "in")
    assert script_name(tmp_path / "sales" / "b.sh", tmp_path) == "sales/b.sh"
    assert script_name(Path("/elsewhere/c.sh"), tmp_path) == "c.sh"


def test_queue_fields_are_carried_to_every_later_event() -> None:
    state = CallState("c1")
    assert state.event("incoming").extra == {}
    visit = {"queue": "support", "queue_wait": "12.000", "queue_position": "2", "agent": ""}
    queued = state.event("queue", result="timeout", extra={**visit, "other": "x"})
    assert queued.extra == {**visit, "other": "x"}
    later = state.event("gather", result="ok", digits="1")
    assert later.extra == visit  # only the queue's fields travel on, not other extras
    again = state.event("hangup", result="caller", extra={"agent": "1001", "queue_wait": "3.5"})
    assert again.extra == {**visit, "agent": "1001", "queue_wait": "3.5"}
