"""The pure report model on hand-made journal rows: every status, where each row keeps its wait,
visits at the period's edges, wrap-up attribution, agent time before the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pbxcore.report.agents import agent_times, with_wrapups
from pbxcore.report.figures import Figures, report
from pbxcore.report.model import STATUSES, Dataset, Period, visits
from pbxcore.store import AgentEvent, JournalEntry

T0 = datetime(2026, 5, 4, 9, tzinfo=UTC)


def row(s: float, event: str, call: str = "A", agent: str = "NONE", *data: str,
        queue: str = "q") -> JournalEntry:
    return JournalEntry(T0 + timedelta(seconds=s), queue, event, call, agent, tuple(data))


@pytest.mark.parametrize(("rows", "status", "wait"), [
    ([row(0, "ENTERQUEUE"), row(7, "ABANDON", "A", "NONE", "1", "1", "7")], "abandoned", 7),
    ([row(0, "ENTERQUEUE"), row(9, "EXITWITHTIMEOUT", "A", "NONE", "1", "1", "9")], "timeout", 9),
    ([row(0, "ENTERQUEUE"), row(4, "EXITWITHKEY", "A", "NONE", "*", "1", "1", "4")],
     "exit_key", 4),
    ([row(0, "ENTERQUEUE"), row(3, "CALLBACK", "A", "NONE", "1", "1", "3")], "callback", 3),
    ([row(0, "ENTERQUEUE"), row(6, "SHUTDOWN", "A", "NONE", "1", "1", "6")], "shutdown", 6),
    ([row(0, "ENTERQUEUE"), row(8, "INTERRUPTED", "A", "NONE", "", "", "8")], "interrupted", 8),
    ([row(0, "FULL", "A", "NONE", "4", "4", "0")], "full", 0),  # refused at the door
    ([row(0, "EXITEMPTY", "A", "NONE", "1", "1", "0")], "empty", 0),
    ([row(0, "ENTERQUEUE")], "waiting", 0),
])
def test_the_row_that_ends_a_visit_names_its_status(rows: list[JournalEntry], status: str,
                                                    wait: float) -> None:
    [v] = visits(rows)
    assert (v.status, v.wait, v.agent) == (status, wait, None)
    assert status in STATUSES


def test_answered_visit_takes_wait_from_connect_and_talk_from_the_end_row() -> None:
    rows = [row(0, "ENTERQUEUE"), row(1, "RINGNOANSWER", "A", "1001", "15000"),
            row(12, "CONNECT", "A", "1002", "12", "leg", "3"),
            row(70, "TRANSFER", "A", "1002", "1003", "default", "12", "58", "1"),
            row(5, "ENTERQUEUE", "B"), row(6, "CONNECT", "B", "1001", "1", "leg", "0"),
            row(50, "INTERRUPTED", "B", "1001", "", "", "45")]
    a, b = visits(sorted(rows, key=lambda r: r.time))
    assert (a.status, a.wait, a.agent, a.talk) == ("answered", 12, "1002", 58)
    assert (b.status, b.wait, b.talk) == ("answered", 1, 44)  # 45 s since it entered - 1 waited


def test_a_call_queued_twice_is_two_visits_and_until_cuts_by_entry() -> None:
    rows = [row(0, "ENTERQUEUE"), row(5, "EXITWITHTIMEOUT", "A", "NONE", "1", "1", "5"),
            row(6, "ENTERQUEUE"), row(8, "CONNECT", "A", "1001", "2", "leg", "1"),
            row(100, "COMPLETECALLER", "A", "1001", "2", "92", "1"),
            row(7, "ENTERQUEUE", "B"), row(9, "ABANDON", "B", "NONE", "1", "1", "2")]
    got = visits(sorted(rows, key=lambda r: r.time), until=T0 + timedelta(seconds=7))
    # B entered at 7 s: not before `until`; A's second visit entered at 6 s and is counted
    # whole although it ended at 100 s.
    assert [(v.call_id, v.status, v.talk) for v in got] == [("A", "timeout", 0),
                                                             ("A", "answered", 92)]


def test_rows_of_a_visit_that_entered_before_the_period_are_ignored() -> None:
    assert visits([row(3, "CONNECT", "A", "1001", "9", "leg", "1"),
                   row(9, "COMPLETEAGENT", "A", "1001", "9", "6", "1")]) == []


def test_wrapup_goes_to_the_agents_last_call_before_it() -> None:
    rows = [row(0, "ENTERQUEUE"), row(2, "CONNECT", "A", "1001", "2", "l", "1"),
            row(10, "COMPLETECALLER", "A", "1001", "2", "8", "1"),
            row(20, "ENTERQUEUE", "B"), row(21, "CONNECT", "B", "1001", "1", "l", "1"),
            row(30, "COMPLETEAGENT", "B", "1001", "1", "9", "1")]
    ev = [AgentEvent(T0 + timedelta(seconds=s), "1001", st) for s, st in
          [(-60, "available"), (2, "talking"), (10, "wrapup"), (15, "available"),
           (21, "talking"), (30, "wrapup"), (34, "available")]]
    period = Period(T0, T0 + timedelta(hours=1))
    times = agent_times(ev[1:], ev[:1], period)  # the login came before the period
    a, b = with_wrapups(visits(rows), times)
    assert (a.wrapup, b.wrapup) == (5, 4)
    t = times["1001"]
    assert (t.logged_in, t.busy, t.states["talking"]) == (3600, 8 + 9 + 5 + 4, 17)
    rep = report(Dataset(period, [], [a, b]), "queue", times)
    f: Figures = rep.rows[0]
    assert (f.answered, f.talk, f.wrapup, f.aht, f.asa, f.sl) == (2, 17, 9, 13, 1.5, 1)
    assert (f.sl2, f.abandon_rate, f.occupancy) == (1, 0, None)  # occupancy: agent rows only
    assert rep.totals.occupancy == pytest.approx(26 / 3600)


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        report(Dataset(Period(T0, T0), [], []), "month")
