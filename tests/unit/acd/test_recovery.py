"""What a restart closes: open queue visits (INTERRUPTED) and agents' last states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pbxcore.acd.recovery import interrupted_rows, last_agent_states
from pbxcore.store.journal import AgentEvent, JournalEntry

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def row(seconds: float, event: str, call: str = "c1", queue: str = "support",
        agent: str = "NONE") -> JournalEntry:
    return JournalEntry(time=T0 + timedelta(seconds=seconds), queue=queue, event=event,
                        call_id=call, agent=agent)


def test_visits_that_ended_stay_closed() -> None:
    rows = [row(0, "ENTERQUEUE"), row(5, "CONNECT", agent="1002"),
            row(60, "COMPLETECALLER", agent="1002"), row(61, "ENTERQUEUE", call="c2"),
            row(70, "ABANDON", call="c2"), row(71, "ENTERQUEUE", call="c3"),
            row(72, "EXITWITHKEY", call="c3"), row(80, "PAUSE", call="NONE", agent="1002")]
    assert interrupted_rows(rows) == []


def test_a_waiting_and_a_connected_caller_are_closed_at_their_last_known_time() -> None:
    rows = [row(0, "ENTERQUEUE"), row(1, "RINGNOANSWER", agent="1003"),
            row(9, "ENTERQUEUE", call="c2", queue="sales"), row(12, "CONNECT", call="c2",
                                                                queue="sales", agent="1002")]
    got = {r.call_id: r for r in interrupted_rows(rows)}
    assert got["c1"].event == "INTERRUPTED" and got["c1"].time == T0 + timedelta(seconds=1)
    assert got["c1"].data == ("", "", "1") and got["c1"].queue == "support"
    assert got["c2"].agent == "1002" and got["c2"].data == ("", "", "3")


def test_a_call_that_queued_twice_is_judged_by_its_last_visit() -> None:
    rows = [row(0, "ENTERQUEUE"), row(3, "EXITWITHTIMEOUT"), row(4, "ENTERQUEUE")]
    assert [r.time for r in interrupted_rows(rows)] == [T0 + timedelta(seconds=4)]


def test_last_agent_states() -> None:
    events = [AgentEvent(T0, "1002", "available"), AgentEvent(T0, "1003", "paused", "lunch"),
              AgentEvent(T0, "1002", "logged_out"), AgentEvent(T0, "1004", "talking")]
    assert last_agent_states(events) == [("1002", "logged_out", ""),
                                         ("1003", "paused", "lunch"), ("1004", "talking", "")]
