"""One behaviour, three backends: memory, SQLite (file in tmp_path) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pbxcore.store import (
    CdrEnd,
    CdrStart,
    Store,
    TraceEntry,
    UnknownCallError,
    new_call_id,
    open_store,
)
from pbxcore.store.base import SCHEMA_VERSION_DDL, migrations
from pbxcore.store.postgres import PostgresStore
from pbxcore.store.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def start(call_id: str, at: datetime = T0, sip_call_id: str = "abc@10.0.0.1", **kw: str) -> CdrStart:
    return CdrStart(call_id=call_id, sip_call_id=sip_call_id, start=at, caller="1001",
                    called="100", caller_name=kw.get("caller_name", "Alice"),
                    route=kw.get("route", "scripts/ivr.py"))


@pytest.fixture
async def store(dsn: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(dsn, base_dir=tmp_path)
    yield s
    await s.close()


async def test_open_update_close_reads_back(store: Store) -> None:
    await store.cdr_open(start("c1"))
    open_cdr = await store.cdr("c1")
    assert open_cdr is not None
    assert (open_cdr.caller, open_cdr.called, open_cdr.caller_name) == ("1001", "100", "Alice")
    assert open_cdr.start == T0 and open_cdr.end is None and open_cdr.disposition is None
    await store.cdr_update("c1", answer=T0 + timedelta(seconds=2), vars={"lang": "en"})
    await store.cdr_append("c1", "recordings", "var/recordings/c1-1.wav")
    await store.cdr_append("c1", "script_errors", "exit status 3")
    await store.cdr_append("c1", "recordings", "var/recordings/c1-2.wav")
    await store.cdr_close("c1", CdrEnd(end=T0 + timedelta(seconds=12.5), disposition="answered",
                                       hangup_by="caller", hangup_cause="BYE", hangup_code=200,
                                       vars={"lang": "en", "account": "42"}))
    cdr = await store.cdr("c1")
    assert cdr is not None
    assert cdr.answer == T0 + timedelta(seconds=2)
    assert cdr.end == T0 + timedelta(seconds=12.5)
    assert (cdr.duration, cdr.billsec) == (12.5, 10.5)
    assert (cdr.disposition, cdr.hangup_by, cdr.hangup_cause, cdr.hangup_code) == (
        "answered", "caller", "BYE", 200)
    assert cdr.recordings == ("var/recordings/c1-1.wav", "var/recordings/c1-2.wav")
    assert cdr.script_errors == ("exit status 3",)
    assert dict(cdr.vars) == {"lang": "en", "account": "42"}
    assert cdr.end is not None and cdr.end.tzinfo is not None
    js = cdr.to_json()
    assert js["start"] == "2024-05-01T12:00:00.250000+00:00"
    assert js["billsec"] == 10.5 and js["route"] == "scripts/ivr.py"


async def test_unanswered_call_bills_nothing_and_end_lists_replace(store: Store) -> None:
    await store.cdr_open(start("c2"))
    await store.cdr_append("c2", "recordings", "old.wav")
    await store.cdr_close("c2", CdrEnd(end=T0 + timedelta(seconds=30), disposition="no answer",
                                       hangup_by="switch", recordings=("a.wav",),
                                       script_errors=("timeout after 5 s",)))
    cdr = await store.cdr("c2")
    assert cdr is not None
    assert (cdr.duration, cdr.billsec, cdr.answer) == (30.0, 0.0, None)
    assert cdr.recordings == ("a.wav",) and cdr.script_errors == ("timeout after 5 s",)


async def test_misuse_is_reported(store: Store) -> None:
    with pytest.raises(UnknownCallError):
        await store.cdr_update("nope", route="x")
    with pytest.raises(UnknownCallError):
        await store.cdr_append("nope", "recordings", "x.wav")
    with pytest.raises(UnknownCallError):
        await store.cdr_close("nope", CdrEnd(end=T0, disposition="failed", hangup_by="switch"))
    await store.cdr_open(start("c3"))
    with pytest.raises(TypeError, match="disposition"):
        await store.cdr_update("c3", disposition="answered")
    with pytest.raises(TypeError):
        await store.cdr_append("c3", "vars", "x")
    with pytest.raises(ValueError, match="naive"):
        await store.cdr_update("c3", answer=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValueError):
        await store.cdr_close("c3", CdrEnd(end=T0, disposition="gone", hangup_by="switch"))  # type: ignore[arg-type]
    assert await store.cdr("nope") is None
    assert await store.trace("nope") == []


async def test_newest_first_with_since_and_limit(store: Store) -> None:
    for i in range(5):
        await store.cdr_open(start(f"n{i}", at=T0 + timedelta(minutes=i)))
    assert [c.call_id for c in await store.cdrs()] == ["n4", "n3", "n2", "n1", "n0"]
    assert [c.call_id for c in await store.cdrs(limit=2)] == ["n4", "n3"]
    since = T0 + timedelta(minutes=2)
    assert [c.call_id for c in await store.cdrs(since=since)] == ["n4", "n3", "n2"]
    # The same instant written in another timezone selects the same rows.
    other = since.astimezone(timezone(timedelta(hours=-5)))
    assert [c.call_id for c in await store.cdrs(since=other, limit=10)] == ["n4", "n3", "n2"]
    assert await store.cdrs(since=T0 + timedelta(hours=1)) == []


async def test_same_sip_call_id_twice_makes_two_cdrs(store: Store) -> None:
    await store.cdr_open(start("first", sip_call_id="reused@pyvoip"))
    await store.cdr_open(start("second", at=T0 + timedelta(seconds=1), sip_call_id="reused@pyvoip"))
    got = await store.cdrs()
    assert [(c.call_id, c.sip_call_id) for c in got] == [
        ("second", "reused@pyvoip"), ("first", "reused@pyvoip")]


async def test_trace_round_trip_keeps_text_and_order(store: Store) -> None:
    weird = "Zoë ☎ \t\r\n\x01\x1b[31m \u2028 \"quoted\" \\ 日本"
    data = {"event": "incoming", "env": {"PBX_CALLER": "1001", "PBX_CALLER_NAME": weird},
            "stdin": '{"event": "incoming"}', "stdout": "answer\nplay welcome\n",
            "stderr": weird, "exit": 0, "duration": 0.0123, "error": None,
            "nested": [1, 2.5, True, None, {"k": [weird]}]}
    await store.trace_append("t1", TraceEntry(2, T0 + timedelta(seconds=1), "script", data))
    await store.trace_append("t1", TraceEntry(1, T0, "event", {"event": "incoming"}))
    await store.trace_append("t1", TraceEntry(2, T0 + timedelta(seconds=2), "note", {"n": 1}))
    await store.trace_append("t2", TraceEntry(1, T0, "error", {"error": "other call"}))
    entries = await store.trace("t1")
    assert [(e.seq, e.kind) for e in entries] == [(1, "event"), (2, "script"), (2, "note")]
    assert dict(entries[1].data) == data
    assert entries[1].time == T0 + timedelta(seconds=1)
    assert entries[0].to_json()["time"] == "2024-05-01T12:00:00.250000+00:00"


async def test_nul_becomes_replacement_character_everywhere(store: Store) -> None:
    await store.cdr_open(start("z1", caller_name="Bad\x00Name"))
    await store.trace_append("z1", TraceEntry(1, T0, "script", {"stdout\x00": "a\x00b"}))
    cdr = await store.cdr("z1")
    assert cdr is not None and cdr.caller_name == "Bad\ufffdName"
    assert dict((await store.trace("z1"))[0].data) == {"stdout\ufffd": "a\ufffdb"}


async def test_reopen_keeps_data_and_migrates_once(sql_dsn: str, tmp_path: Path) -> None:
    first = await open_store(sql_dsn, base_dir=tmp_path)
    call_id = new_call_id()
    await first.cdr_open(start(call_id))
    await first.close()
    second = await open_store(sql_dsn, base_dir=tmp_path)
    try:
        assert [c.call_id for c in await second.cdrs()] == [call_id]
    finally:
        await second.close()
    versions = [v for v, _ in migrations("sqlite")]
    assert _schema_versions(sql_dsn) == versions


def _schema_versions(dsn: str) -> list[int]:
    """Applied migrations, after checking the cdr_legs table exists (and is empty here)."""
    query = "SELECT version FROM schema_version ORDER BY 1"
    if dsn.startswith("sqlite:///"):
        with sqlite3.connect(dsn.removeprefix("sqlite:///")) as db:
            assert db.execute("SELECT count(*) FROM cdr_legs").fetchone() == (0,)
            return [v for (v,) in db.execute(query)]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM cdr_legs").fetchone() == (0,)
        return [v for (v,) in conn.execute(query)]


async def test_concurrent_writers_lose_nothing(sql_dsn: str, tmp_path: Path) -> None:
    # Two stores on one database (as `pbx run` and a second node or process would be), each
    # with many tasks writing at once, opening all stores together (migration race included).
    a, b = await asyncio.gather(open_store(sql_dsn, base_dir=tmp_path),
                                open_store(sql_dsn, base_dir=tmp_path))

    async def call(s: Store, name: str, i: int) -> None:
        await s.cdr_open(start(name, at=T0 + timedelta(milliseconds=i)))
        await s.trace_append(name, TraceEntry(1, T0, "event", {"i": i}))
        await s.cdr_append(name, "recordings", f"{name}.wav")
        await s.cdr_close(name, CdrEnd(end=T0 + timedelta(seconds=1), disposition="answered",
                                       hangup_by="caller"))

    try:
        await asyncio.gather(*(call(a if i % 2 else b, f"w{i}", i) for i in range(60)))
        rows = await a.cdrs(limit=1000)
        assert len(rows) == 60
        assert all(c.disposition == "answered" and c.recordings == (f"{c.call_id}.wav",)
                   for c in rows)
        assert [len(await b.trace(f"w{i}")) for i in range(60)] == [1] * 60
    finally:
        await a.close()
        await b.close()


def test_call_ids_are_unique_and_time_ordered() -> None:
    ids = [new_call_id(1_700_000_000.0 + i) for i in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    assert len({new_call_id(1_700_000_000.0) for _ in range(100)}) == 100


async def test_unknown_dsn_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await open_store("mysql://x", base_dir=tmp_path)


async def test_relative_sqlite_dsn_is_relative_to_base_dir(tmp_path: Path) -> None:
    s = await open_store("sqlite:///var/pbx.db", base_dir=tmp_path)
    await s.close()
    assert (tmp_path / "var" / "pbx.db").is_file()


# ---------------------------------------------------------------- dialled legs (B2BUA)

def leg(target: str, disposition: str | None, code: int | None = None, **kw: Any) -> dict[str, Any]:
    """Leg data as the switch writes it."""
    return {"target": target, "uri": f"sip:{target}@10.0.0.9:5060", "ring_start": T0.isoformat(),
            "answer": kw.get("answer"), "end": kw.get("end"), "disposition": disposition,
            "sip_code": code, "reason": kw.get("reason", ""),
            "talk_seconds": kw.get("talk_seconds"), "recordings": kw.get("recordings", [])}


async def test_legs_are_nested_in_leg_order_and_replaced(store: Store) -> None:
    await store.cdr_open(start("d1"))
    assert (await store.cdr("d1")).legs == ()  # type: ignore[union-attr]
    busy = leg("1002", "busy", 486, reason="Busy Here", end=(T0 + timedelta(seconds=2)).isoformat())
    await store.cdr_leg("d1", 2, leg("1003", None))  # ringing: written before leg 1 finished
    await store.cdr_leg("d1", 1, busy)
    answered = leg("1003", "answered", 200, answer=(T0 + timedelta(seconds=5)).isoformat(),
                   end=(T0 + timedelta(seconds=65)).isoformat(), talk_seconds=60.25,
                   recordings=("var/recordings/d1-leg2.wav",), reason="BYE\x00 from callee")
    await store.cdr_leg("d1", 2, answered)  # the same leg again replaces it
    await store.cdr_close("d1", CdrEnd(end=T0 + timedelta(seconds=65), disposition="answered",
                                       hangup_by="callee", hangup_cause="BYE from 1003"))
    cdr = await store.cdr("d1")
    assert cdr is not None and cdr.hangup_by == "callee"
    want_2 = {**answered, "leg": 2, "recordings": ["var/recordings/d1-leg2.wav"],
              "reason": "BYE\ufffd from callee"}
    assert [dict(x) for x in cdr.legs] == [{"leg": 1, **busy}, want_2]
    assert list(cdr.legs[0])[0] == "leg"  # the number reads first in JSON and tables
    assert cdr.to_json()["legs"] == [{"leg": 1, **busy}, want_2]
    # A leg may still be written after the call's close (the callee's BYE handled last).
    await store.cdr_leg("d1", 3, {"target": "1004", "disposition": "canceled", "sip_code": 487})
    got = await store.cdr("d1")
    assert got is not None and [(x["leg"], x.get("target")) for x in got.legs] == [
        (1, "1002"), (2, "1003"), (3, "1004")]


async def test_cdrs_lists_every_call_with_its_own_legs(store: Store) -> None:
    for i in range(4):
        await store.cdr_open(start(f"L{i}", at=T0 + timedelta(minutes=i)))
        for n in range(1, i + 1):  # call Li has i legs
            await store.cdr_leg(f"L{i}", n, leg(f"20{n}", "no answer", 408))
    got = await store.cdrs()
    assert [(c.call_id, [x["target"] for x in c.legs]) for c in got] == [
        ("L3", ["201", "202", "203"]), ("L2", ["201", "202"]), ("L1", ["201"]), ("L0", [])]
    assert [c.call_id for c in await store.cdrs(limit=2)] == ["L3", "L2"]
    assert [len(c.legs) for c in await store.cdrs(since=T0 + timedelta(minutes=1))] == [3, 2, 1]
    assert [c.to_json()["legs"] for c in await store.cdrs()][-1] == []


async def test_leg_misuse_is_reported(store: Store) -> None:
    with pytest.raises(UnknownCallError):
        await store.cdr_leg("nope", 1, leg("1002", "busy", 486))
    await store.cdr_open(start("nope"))  # nothing was written for it while it did not exist
    assert (await store.cdr("nope")).legs == ()  # type: ignore[union-attr]
    for number in (0, -1, True, "1", 1.0):
        with pytest.raises(ValueError, match="leg number"):
            await store.cdr_leg("nope", number, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="disposition 'gone'"):
        await store.cdr_leg("nope", 1, leg("1002", "gone"))
    with pytest.raises(ValueError, match="leg 2"):
        await store.cdr_leg("nope", 1, {"leg": 2})
    with pytest.raises(ValueError):  # jsonb refuses NaN, so no backend takes it
        await store.cdr_leg("nope", 1, {"talk_seconds": float("nan")})
    with pytest.raises(TypeError):
        await store.cdr_leg("nope", 1, {"when": T0})  # datetimes go in as ISO strings
    with pytest.raises(TypeError):
        await store.cdr_leg("nope", 1, [("target", "1002")])  # type: ignore[arg-type]
    assert (await store.cdr("nope")).legs == ()  # type: ignore[union-attr]
    await store.cdr_leg("nope", 1, {"leg": 1, "target": "1002"})  # a matching "leg" key is fine
    assert [dict(x) for x in (await store.cdr("nope")).legs] == [  # type: ignore[union-attr]
        {"leg": 1, "target": "1002"}]


async def test_cdrs_reads_legs_in_one_query_not_one_per_call(sql_dsn: str,
                                                            tmp_path: Path) -> None:
    store = await open_store(sql_dsn, base_dir=tmp_path)
    try:
        for i in range(20):
            await store.cdr_open(start(f"q{i}", at=T0 + timedelta(seconds=i)))
            await store.cdr_leg(f"q{i}", 1, leg("1002", "busy", 486))
            await store.cdr_leg(f"q{i}", 2, leg("1003", "answered", 200))
        selects = await _count_selects(store, lambda: store.cdrs(limit=20))
        assert selects == 2  # the CDRs, then the legs of all of them
        assert await _count_selects(store, lambda: store.cdr("q3")) == 2
        assert await _count_selects(store, lambda: store.cdrs(since=T0 + timedelta(hours=1))) == 1
        assert [len(c.legs) for c in await store.cdrs(limit=20)] == [2] * 20
    finally:
        await store.close()


async def _count_selects(store: Store, read: Callable[[], Awaitable[object]]) -> int:
    """SELECT statements sent to the database while ``read`` runs."""
    sql: list[str] = []
    if isinstance(store, SqliteStore):
        db = store._conn()
        await store._run(db.set_trace_callback, sql.append)
        try:
            await read()
        finally:
            await store._run(db.set_trace_callback, None)
    else:
        assert isinstance(store, PostgresStore)
        conn = store._conn

        class Counting:  # psycopg connections have __slots__: wrap instead of patching
            def __getattr__(self, name: str) -> Any:
                return getattr(conn, name)

            async def execute(self, query: str, *args: Any) -> Any:
                sql.append(query)
                return await conn.execute(query, *args)

        store._conn = Counting()  # type: ignore[assignment]
        try:
            await read()
        finally:
            store._conn = conn
    return sum(1 for q in sql if q.lstrip().upper().startswith("SELECT"))


async def test_existing_database_gains_the_leg_index(sql_dsn: str, tmp_path: Path) -> None:
    # A database made before 0002 (only 0001 applied, a call in it) is migrated on open, keeps
    # its call, and takes legs; writing the same leg twice needs 0002's unique index.
    dialect = "sqlite" if sql_dsn.startswith("sqlite:///") else "postgresql"
    statements = [SCHEMA_VERSION_DDL, *(s for v, stmts in migrations(dialect) if v == 1 for s in stmts),
                  f"INSERT INTO schema_version VALUES (1, '{T0.isoformat()}')",
                  "INSERT INTO cdr (call_id, sip_call_id, start_time, caller, called, recordings, "
                  f"script_errors, vars) VALUES ('before', 'x@h', '{T0.isoformat()}', '1001', "
                  "'100', '[]', '[]', '{}')"]
    if dialect == "sqlite":
        path = Path(sql_dsn.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as db:
            for statement in statements:
                db.execute(statement)
    else:
        with psycopg.connect(sql_dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
    store = await open_store(sql_dsn, base_dir=tmp_path)
    try:
        await store.cdr_leg("before", 1, leg("1002", "busy", 486))
        await store.cdr_leg("before", 1, leg("1002", "declined", 603))
        cdr = await store.cdr("before")
        assert cdr is not None and cdr.start == T0
        assert [(x["leg"], x["sip_code"]) for x in cdr.legs] == [(1, 603)]
    finally:
        await store.close()
    query = "SELECT version FROM schema_version ORDER BY 1"
    if dialect == "sqlite":
        with sqlite3.connect(path) as db:
            assert [v for (v,) in db.execute(query)] == [v for v, _ in migrations(dialect)]
    else:
        with psycopg.connect(sql_dsn) as conn:
            assert [v for (v,) in conn.execute(query)] == [v for v, _ in migrations(dialect)]


async def test_two_stores_write_legs_of_one_call_at_once(sql_dsn: str, tmp_path: Path) -> None:
    # Two nodes finishing legs of the same call: every leg lands once, the last write of a leg wins.
    a = await open_store(sql_dsn, base_dir=tmp_path)
    b = await open_store(sql_dsn, base_dir=tmp_path)
    try:
        await a.cdr_open(start("par"))
        await asyncio.gather(*(s.cdr_leg("par", n, leg(f"30{n}", None))
                               for n in range(1, 11) for s in (a, b)))
        await asyncio.gather(*((a if n % 2 else b).cdr_leg("par", n, leg(f"30{n}", "canceled", 487))
                               for n in range(1, 11)))
        cdr = await b.cdr("par")
        assert cdr is not None
        assert [(x["leg"], x["target"], x["disposition"]) for x in cdr.legs] == [
            (n, f"30{n}", "canceled") for n in range(1, 11)]
    finally:
        await a.close()
        await b.close()


async def test_trace_extend_writes_a_batch_in_order(store: Store) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await store.cdr_open(CdrStart("batch-1", "sip-b", start, "1001", "100"))
    entries = [TraceEntry(n, start, "note", {"n": n, "text": f"ünï {n}"}) for n in range(1, 6)]
    await store.trace_extend("batch-1", entries[:3])
    await store.trace_extend("batch-1", [])
    await store.trace_extend("batch-1", entries[3:])
    got = await store.trace("batch-1")
    assert [(e.seq, e.data["n"], e.data["text"]) for e in got] == [
        (n, n, f"ünï {n}") for n in range(1, 6)]
