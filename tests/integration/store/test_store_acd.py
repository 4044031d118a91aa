"""The ACD's part of the store, one behaviour over memory, SQLite and a real PostgreSQL: the queue
journal (Asterisk queue_log columns), CDR queue segments, agent events."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from pbxcore.store import (
    AgentEvent,
    CdrEnd,
    CdrStart,
    JournalEntry,
    QueueSegment,
    Store,
    UnknownCallError,
    open_store,
)

T0 = datetime(2024, 5, 1, 9, 0, 0, 125000, tzinfo=UTC)


@pytest.fixture
async def store(dsn: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(dsn, base_dir=tmp_path)
    yield s
    await s.close()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call_facts(call_id: str, queue: str, start: float) -> list[JournalEntry]:
    return [
        JournalEntry(at(start), queue, "ENTERQUEUE", call_id, data=("", "1001", "2")),
        JournalEntry(at(start + 15), queue, "RINGNOANSWER", call_id, "1004", ("15000",)),
        JournalEntry(at(start + 20), queue, "CONNECT", call_id, "1002", ("20", call_id, "3"),
                     node="node-a", extra={"tier": 1}),
        JournalEntry(at(start + 80), queue, "COMPLETECALLER", call_id, "1002", ("20", "60", "1")),
    ]


async def test_journal_round_trip_and_filters(store: Store) -> None:
    a, b = call_facts("CALL-A", "support", 0), call_facts("CALL-B", "sales", 5)
    await store.journal_append(a)
    await store.journal_append(b)
    await store.journal_append([JournalEntry(at(100), "NONE", "PAUSE", agent="1002",
                                             data=("lunch",))])
    await store.journal_append([])  # nothing to write is not an error
    everything = await store.journal()
    assert [e.time for e in everything] == sorted(e.time for e in everything)  # oldest first
    assert len(everything) == 9
    connect = (await store.journal(call_id="CALL-A"))[2]
    assert connect == a[2]
    assert (connect.data, connect.node, dict(connect.extra)) == (("20", "CALL-A", "3"),
                                                                 "node-a", {"tier": 1})
    assert connect.time.tzinfo is not None
    assert await store.journal(queue="sales") == b
    assert await store.journal(since=at(80), until=at(85)) == [a[3]]  # until is exclusive
    assert await store.journal(since=at(80), until=at(85.5)) == [a[3], b[3]]
    assert [e.event for e in await store.journal(limit=2)] == ["COMPLETECALLER", "PAUSE"]
    pause = (await store.journal(queue="NONE"))[0]
    assert (pause.call_id, pause.agent, pause.data) == ("NONE", "1002", ("lunch",))
    js = pause.to_json()
    assert js == {"time": "2024-05-01T09:01:40.125000+00:00", "callid": "NONE",
                  "queuename": "NONE", "agent": "1002", "event": "PAUSE", "data1": "lunch",
                  "data2": "", "data3": "", "data4": "", "data5": "", "node": None, "extra": {}}


async def test_journal_ties_keep_append_order_and_times_convert(store: Store) -> None:
    msk = timezone(timedelta(hours=3))
    same = datetime(2024, 5, 1, 12, 0, tzinfo=msk)  # 09:00 UTC
    events = ["ENTERQUEUE", "EXITWITHKEY", "ABANDON"]
    await store.journal_append([JournalEntry(same, "q", ev, "C1") for ev in events])
    got = await store.journal(since=T0 - timedelta(seconds=1))
    assert [e.event for e in got] == events
    assert got[0].time == same and got[0].time.utcoffset() == timedelta(0)


@pytest.mark.parametrize("bad", [
    JournalEntry(T0, "q", "ENTERQUEEU", "C1"),
    JournalEntry(T0, "q", "CONNECT", "C1", data=("1", "2", "3", "4", "5", "6")),
    JournalEntry(T0, "", "CONNECT", "C1"),
    JournalEntry(datetime(2024, 5, 1), "q", "CONNECT", "C1"),
])
async def test_bad_journal_entries_are_refused_and_nothing_is_written(
        store: Store, bad: JournalEntry) -> None:
    good = JournalEntry(T0, "q", "ENTERQUEUE", "C1")
    with pytest.raises(ValueError):
        await store.journal_append([good, bad])
    assert await store.journal() == []


async def test_peer_text_with_nul_is_stored_scrubbed(store: Store) -> None:
    await store.journal_append([JournalEntry(T0, "q", "EXITWITHKEY", "C\x001",
                                             data=("0\x00",), extra={"k\x00": "v\x00"})])
    (got,) = await store.journal()
    assert (got.call_id, got.data, dict(got.extra)) == ("C\ufffd1", ("0\ufffd",),
                                                        {"k\ufffd": "v\ufffd"})


async def test_cdr_queue_segments_load_with_the_cdr(store: Store) -> None:
    await store.cdr_open(CdrStart("Q1", "q@h", T0, "200", "100"))
    await store.cdr_open(CdrStart("Q2", "r@h", at(1), "201", "100"))
    first = QueueSegment(1, "ivr-operators", at(2), position=3, priority=5)
    await store.cdr_queue("Q1", first)  # on entry: still waiting
    assert (await store.cdr("Q1")).queues == (first,)  # type: ignore[union-attr]
    done = QueueSegment(1, "ivr-operators", at(2), position=3, priority=5, wait=31.5,
                        agent=None, outcome="exit_key")
    second = QueueSegment(2, "consultants", at(40), position=1, wait=12.25, agent="1004",
                          outcome="answered")
    await store.cdr_queue("Q1", second)
    await store.cdr_queue("Q1", done)  # replaces number 1 when the caller leaves
    await store.cdr_leg("Q1", 1, {"target": "1004", "disposition": "answered"})
    await store.cdr_close("Q1", CdrEnd(at(120), "answered", "caller"))
    await store.cdr_queue("Q1", done)  # allowed after the close, like a leg
    cdr = await store.cdr("Q1")
    assert cdr is not None and cdr.queues == (done, second)
    assert cdr.queues[1].entered.tzinfo is not None
    assert cdr.to_json()["queues"][1] == {
        "number": 2, "queue": "consultants", "entered": "2024-05-01T09:00:40.125000+00:00",
        "position": 1, "priority": 0, "wait": 12.25, "agent": "1004", "outcome": "answered"}
    listed = {c.call_id: c for c in await store.cdrs()}
    assert listed["Q1"].queues == (done, second) and listed["Q2"].queues == ()
    assert listed["Q1"].legs[0]["target"] == "1004"


async def test_cdr_queue_refuses_unknown_calls_and_bad_segments(store: Store) -> None:
    with pytest.raises(UnknownCallError):
        await store.cdr_queue("NOPE", QueueSegment(1, "q", T0, position=1))
    await store.cdr_open(CdrStart("Q3", "s@h", T0, "1", "2"))
    for bad in (QueueSegment(0, "q", T0, 1), QueueSegment(1, "q", T0, 1, outcome="won"),
                QueueSegment(1, "q", T0, -1), QueueSegment(1, "q", datetime(2024, 1, 1), 1)):
        with pytest.raises(ValueError):
            await store.cdr_queue("Q3", bad)
    assert (await store.cdr("Q3")).queues == ()  # type: ignore[union-attr]


async def test_agent_events_query(store: Store) -> None:
    events = [
        AgentEvent(at(0), "1001", "available", node="node-a"),
        AgentEvent(at(1), "1002", "available", queue="support", node="node-b"),
        AgentEvent(at(5), "1001", "paused", reason="lunch", node="node-a"),
        AgentEvent(at(9), "1001", "logged_out", node="node-a"),
    ]
    await store.agent_event_append(events[:2])
    await store.agent_event_append(events[2:])
    assert await store.agent_events() == events
    assert await store.agent_events(agent="1001", since=at(1)) == events[2:]
    assert await store.agent_events(node="node-b") == [events[1]]
    assert await store.agent_events(until=at(5), limit=1) == [events[1]]
    with pytest.raises(ValueError):
        await store.agent_event_append([AgentEvent(at(10), "1001", "asleep")])
    assert len(await store.agent_events()) == 4


async def test_acd_tables_persist_across_a_reopen(sql_dsn: str, tmp_path: Path) -> None:
    s = await open_store(sql_dsn, base_dir=tmp_path)
    await s.journal_append(call_facts("CALL-A", "support", 0))
    await s.agent_event_append([AgentEvent(T0, "1001", "available")])
    await s.close()
    s = await open_store(sql_dsn, base_dir=tmp_path)
    try:
        assert [e.event for e in await s.journal()] == [
            "ENTERQUEUE", "RINGNOANSWER", "CONNECT", "COMPLETECALLER"]
        assert await s.agent_events() == [AgentEvent(T0, "1001", "available")]
    finally:
        await s.close()


async def test_queue_log_columns_are_asterisks(sql_dsn: str, tmp_path: Path) -> None:
    """A report written for Asterisk's queue_log reads the same columns here."""
    s = await open_store(sql_dsn, base_dir=tmp_path)
    await s.journal_append(call_facts("CALL-A", "support", 0))
    await s.close()
    query = ("SELECT callid, queuename, agent, event, data1, data2, data3 FROM queue_journal "
             "WHERE event = 'CONNECT'")
    if sql_dsn.startswith("sqlite"):
        with sqlite3.connect(tmp_path / "var" / "pbx.db") as db:
            row = db.execute(query).fetchone()
    else:
        with psycopg.connect(sql_dsn) as conn:
            row = conn.execute(query).fetchone()
    assert row == ("CALL-A", "support", "1002", "CONNECT", "20", "CALL-A", "3")
