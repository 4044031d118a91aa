"""Report figures on the fixture day (report_fixture.py), on every backend, against values
computed by hand below.

Hand computation (waits, talk and wrap-up from the fixture's table):

| figure | all | support | sales | D | D+1 |
|---|---|---|---|---|---|
| offered (visits) | 7 | 5 (C1 C2 C3 C4 C8) | 2 (C5 C6) | 6 | 1 |
| answered | 4 | 3 | 1 | 3 | 1 |
| abandoned (short <= 5 s) | 2 (1: C3 3 s) | 2 (1) | 0 | 2 (1) | 0 |
| ASA | (10+25+15+5)/4 = 13.75 | (10+25+15)/3 = 16.7 | 5 | (10+25+5)/3 = 13.3 | 15 |
| within SL (support 20 s, sales 30 s) | 3 (C1 C8 C5; C2's 25 > 20) | 2 | 1 | 2 | 1 |
| SL = within / answered | 3/4 = 0.75 | 2/3 | 1 | 2/3 | 1 |
| SL2 = within / (answered + abandoned) | 3/6 = 0.5 | 2/5 = 0.4 | 1 | 2/5 | 1 |
| talk | 120+60+200+90 = 470 | 270 | 200 | 380 | 90 |
| wrap-up | 30+20+10+0 = 60 | 50 | 10 | 60 | 0 |
| AHT = (talk + wrap-up) / answered | 530/4 = 132.5 | 320/3 = 106.7 | 210 | 440/3 = 146.7 | 90 |
| abandon rate | 2/7 = 0.2857 | 2/5 | 0 | 2/6 | 0 |
| calls (CDRs) | 8 | 5 | 2 | 7 | 1 |

Agents over the period (state time from agent events):

| agent | logged in | paused (by reason) | busy = talking + wrap-up | occupancy |
|---|---|---|---|---|
| 1001 | 08:00-12:30 = 16200 | lunch 1200 + training 1800 = 3000 | 120+30+200+10 = 360 | 360/13200 = 0.0273 |
| 1002 | 7200 (D 09-11) + 2100 (D+1 08:55-09:30) = 9300 | "" 900 | 60+20+90 = 170 | 170/8400 = 0.0202 |

Per agent calls: 1001 answered C1, C5 (AHT (320+40)/2 = 180); 1002 C2, C8 (AHT (150+20)/2 = 85).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pbxcore.report.figures import Figures, Report, report
from pbxcore.report.load import Context, load
from pbxcore.report.model import Filters, Period
from pbxcore.store import open_store
from tests.integration.store.report_fixture import (
    EXTENSIONS,
    MEMBERS,
    SERVICE_LEVEL,
    SINCE,
    UNTIL,
    at,
    write_fixture,
)

CONTEXT = Context(EXTENSIONS, SERVICE_LEVEL, MEMBERS)


NO_FILTERS, WHOLE = Filters(), Period(SINCE, UNTIL)


async def _report(dsn: str, tmp_path, by: str, filters: Filters = NO_FILTERS,
                  period: Period = WHOLE) -> Report:
    store = await open_store(dsn, base_dir=tmp_path)
    try:
        if not await store.cdrs(limit=1):
            await write_fixture(store)
        data, agents = await load(store, period, filters, CONTEXT, now=UNTIL + timedelta(days=1))
    finally:
        await store.close()
    return report(data, by, agents)


def _row(rep: Report, key: str) -> Figures:
    return next(r for r in rep.rows if r.key == key)


def _core(f: Figures) -> tuple[object, ...]:
    return (f.calls, f.offered, f.answered, f.abandoned, f.short_abandoned, f.within_sl,
            f.talk, f.wrapup)


async def test_totals_and_days(dsn: str, tmp_path) -> None:
    rep = await _report(dsn, tmp_path, "day")
    t = rep.totals
    assert _core(t) == (8, 7, 4, 2, 1, 3, 470, 60)
    assert (t.asa, t.sl, t.sl2, t.aht, t.max_wait) == (13.75, 0.75, 0.5, 132.5, 60)
    assert t.abandon_rate == pytest.approx(2 / 7)
    assert t.statuses == {"answered": 4, "abandoned": 2, "timeout": 1}
    assert t.calls_answered == 6  # dispositions: C3 and C4 abandoned
    assert t.hold == 12  # C1's leg recorded 12 s on hold; no other leg records hold
    assert [r.key for r in rep.rows] == ["2026-05-04", "2026-05-05"]
    d0, d1 = rep.rows
    assert _core(d0) == (7, 6, 3, 2, 1, 2, 380, 60)
    assert (d0.asa, d0.sl, d0.sl2, d0.aht) == pytest.approx((40 / 3, 2 / 3, 0.4, 440 / 3))
    assert _core(d1) == (1, 1, 1, 0, 0, 1, 90, 0)
    assert (d1.asa, d1.sl, d1.sl2, d1.aht) == (15, 1, 1, 90)


async def test_by_queue(dsn: str, tmp_path) -> None:
    rep = await _report(dsn, tmp_path, "queue")
    assert [r.key for r in rep.rows] == ["sales", "support"]
    sales, support = rep.rows
    assert _core(support) == (5, 5, 3, 2, 1, 2, 270, 50)
    assert (support.asa, support.sl, support.sl2, support.aht) == pytest.approx(
        (50 / 3, 2 / 3, 0.4, 320 / 3))
    assert _core(sales) == (2, 2, 1, 0, 0, 1, 200, 10)
    assert (sales.asa, sales.sl, sales.sl2, sales.aht) == (5, 1, 1, 210)
    assert sales.statuses == {"answered": 1, "timeout": 1}


async def test_by_agent_with_occupancy_and_pauses(dsn: str, tmp_path) -> None:
    rep = await _report(dsn, tmp_path, "agent")
    a1, a2 = _row(rep, "1001"), _row(rep, "1002")
    assert (a1.answered, a1.talk, a1.wrapup, a1.aht, a1.asa) == (2, 320, 40, 180, 7.5)
    assert (a1.logged_in, a1.paused, a1.busy) == (16200, 3000, 360)
    assert a1.pauses == {"lunch": 1200, "training": 1800}
    assert a1.occupancy == pytest.approx(360 / 13200)
    assert (a2.answered, a2.talk, a2.wrapup, a2.aht) == (2, 150, 20, 85)
    assert (a2.logged_in, a2.paused, a2.busy, a2.pauses) == (9300, 900, 170, {"": 900})
    assert a2.occupancy == pytest.approx(170 / 8400)
    assert a1.calls == 3  # C1, C5 and the direct call C7 it answered
    assert (rep.totals.logged_in, rep.totals.paused, rep.totals.busy) == (25500, 3900, 530)


async def test_by_did_hour_route(dsn: str, tmp_path) -> None:
    did = await _report(dsn, tmp_path, "did")
    assert [(r.key, r.calls, r.offered, r.answered) for r in did.rows] == [
        ("0800100100", 4, 4, 3), ("0800200200", 3, 3, 1)]
    assert did.totals.calls == 7  # inbound only: C7 is out
    hour = await _report(dsn, tmp_path, "hour")
    assert [(r.key, r.calls, r.offered) for r in hour.rows] == [
        ("2026-05-04 09:00", 3, 3), ("2026-05-04 10:00", 2, 2), ("2026-05-04 11:00", 2, 1),
        ("2026-05-05 09:00", 1, 1)]
    route = await _report(dsn, tmp_path, "route")
    assert [(r.key, r.calls, r.offered) for r in route.rows] == [
        ("/site/scripts/internal.py", 1, 0), ("/site/scripts/queue.py", 7, 7)]


@pytest.mark.parametrize(("filters", "expected"), [
    # (calls, offered, answered, abandoned, short, within SL, talk, wrap-up)
    (Filters(direction="out"), (1, 0, 0, 0, 0, 0, 0, 0)),  # C7 only
    (Filters(direction="in"), (7, 7, 4, 2, 1, 3, 470, 60)),
    (Filters(number="0800200*"), (3, 3, 1, 1, 1, 1, 200, 10)),  # C3 C5 C6
    (Filters(min_duration=100), (3, 3, 3, 0, 0, 3, 410, 40)),  # C1 135 s, C5 206, C8 106
    (Filters(queue="sales"), (2, 2, 1, 0, 0, 1, 200, 10)),
    (Filters(agent="1002"), (2, 2, 2, 0, 0, 1, 150, 20)),  # C2 (25 s > 20) and C8
    (Filters(number="1003"), (1, 0, 0, 0, 0, 0, 0, 0)),  # matches the caller
])
async def test_filters(dsn: str, tmp_path, filters: Filters, expected: tuple[int, ...]) -> None:
    rep = await _report(dsn, tmp_path, "day", filters)
    assert _core(rep.totals) == expected


async def test_agents_shown_follow_the_filters(dsn: str, tmp_path) -> None:
    rep = await _report(dsn, tmp_path, "agent", Filters(queue="sales"))
    assert [r.key for r in rep.rows] == ["1001"]  # sales' only member
    assert rep.totals.logged_in == 16200


async def test_a_shorter_period_clips_agent_time(dsn: str, tmp_path) -> None:
    """09:05 to 10:10 on D: visits C2 C3 C4 entered in it.  1001: available 09:05-10:00
    (3300) + lunch 10:00-10:10 (600) = 3900 logged in, 600 paused, busy 0.  1002: 327
    available + 60 talking + 20 wrap-up + 1093 available + 900 paused + 1500 available = 3900
    logged in, busy 80, occupancy 80/3000."""
    rep = await _report(dsn, tmp_path, "agent", period=Period(at(0, "09:05:00"),
                                                              at(0, "10:10:00")))
    assert (rep.totals.offered, rep.totals.answered, rep.totals.abandoned) == (3, 1, 2)
    a1, a2 = _row(rep, "1001"), _row(rep, "1002")
    assert (a1.logged_in, a1.paused, a1.busy, a1.occupancy) == (3900, 600, 0, 0)
    assert (a2.logged_in, a2.paused, a2.busy) == (3900, 900, 80)
    assert a2.occupancy == pytest.approx(80 / 3000)


async def test_cdrs_until_is_exclusive(dsn: str, tmp_path) -> None:
    store = await open_store(dsn, base_dir=tmp_path)
    try:
        await write_fixture(store)
        got = await store.cdrs(at(0, "09:10:00"), 100, until=at(0, "10:30:00"))
        assert [c.call_id for c in got] == ["C4", "C3", "C2"]  # C5 starts at 10:30: excluded
        assert [c.call_id for c in await store.cdrs(until=at(0, "09:10:00"))] == ["C1"]
    finally:
        await store.close()
