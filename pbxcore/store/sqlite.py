"""SQLite Store: the embedded default (one file, WAL, nothing to install).

One connection, owned by one worker thread: every call runs there through ``_run`` so the event
loop never blocks on disk and sqlite3's thread rules hold. WAL lets `pbx cdr` and `pbx trace` read
while `pbx run` writes; busy_timeout makes a second writer (another process) wait instead of fail.
Times are stored as ISO 8601 UTC text with microseconds, so text order is time order.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pbxcore.store import campaigns as camp
from pbxcore.store.base import (
    CDR_COLUMNS,
    FIELD_COLUMN,
    LEGS_OF,
    SCHEMA_VERSION_DDL,
    Cdr,
    CdrEnd,
    CdrStart,
    TraceEntry,
    UnknownCallError,
    cdr_from_row,
    cdr_window,
    check_append,
    check_update,
    checked_entry,
    checked_leg,
    closed,
    from_iso,
    group_legs,
    interrupted,
    iso,
    migrations,
    opened,
    scrub,
)
from pbxcore.store.callbacks import (
    CALLBACK_COLUMNS,
    CallbackEntry,
    callback_from_row,
    callback_row,
    checked_callback,
)
from pbxcore.store.callbacks import UPSERT_TAIL as CALLBACK_UPSERT
from pbxcore.store.campaigns import CampaignRow
from pbxcore.store.journal import (
    AGENT_EVENT_COLUMNS,
    JOURNAL_COLUMNS,
    SEGMENT_COLUMNS,
    SEGMENTS_OF,
    AgentEvent,
    JournalEntry,
    QueueSegment,
    agent_event_filter,
    agent_event_from_row,
    agent_event_row,
    checked_agent_event,
    checked_journal,
    checked_segment,
    group_segments,
    journal_filter,
    journal_from_row,
    journal_row,
    segment_row,
)
from pbxcore.store.registrations import (
    REGISTRATION_COLUMNS,
    Registration,
    checked_registration,
    registration_from_row,
    registration_row,
)
from pbxcore.store.registrations import UPSERT_TAIL as REGISTRATION_UPSERT
from pbxcore.store.voicemail import (
    VOICEMAIL_COLUMNS,
    VoicemailMessage,
    checked_message,
    checked_status,
    message_filter,
    message_from_row,
    message_row,
)

T = TypeVar("T")

def cdr_params(cdr: Cdr) -> tuple[Any, ...]:
    """Row values in CDR_COLUMNS order, times and JSON as text."""
    return (cdr.call_id, cdr.sip_call_id, iso(cdr.start), iso(cdr.answer), iso(cdr.end),
            cdr.caller, cdr.caller_name, cdr.called, cdr.route, cdr.disposition, cdr.duration,
            cdr.billsec, cdr.hangup_by, cdr.hangup_cause, cdr.hangup_code,
            json.dumps(list(cdr.recordings)), json.dumps(list(cdr.script_errors)),
            json.dumps(dict(cdr.vars), ensure_ascii=False), cdr.node)


_CLOSE = ("UPDATE cdr SET end_time = ?, disposition = ?, duration = ?, billsec = ?, "
          "hangup_by = ?, hangup_cause = ?, hangup_code = ?, recordings = ?, "
          "script_errors = ?, vars = ? WHERE call_id = ?")


def _write_closed(tx: sqlite3.Connection, cdr: Cdr) -> None:
    p = cdr_params(cdr)
    tx.execute(_CLOSE, (p[4], *p[9:18], cdr.call_id))


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pbx-sqlite")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        store = cls(path)
        try:
            await store._run(store._connect)
        except BaseException:
            await store.close()
            raise
        return store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is closed")
        return self._db

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; multi-statement work opens BEGIN IMMEDIATE itself.
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        self._db = db
        # Switching to WAL takes an exclusive lock and SQLite does not call the busy handler for
        # it: when another process is creating the same file right now, retry for a while.
        deadline = time.monotonic() + 10.0
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)  # in the store's worker thread, never on the event loop
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(SCHEMA_VERSION_DDL)
        for version, statements in migrations("sqlite"):
            # Re-check under the write lock: another process may have migrated meanwhile.
            with self._tx() as tx:
                if tx.execute("SELECT 1 FROM schema_version WHERE version = ?",
                              (version,)).fetchone():
                    continue
                for statement in statements:
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version VALUES (?, ?)",
                           (version, datetime.now(UTC).isoformat()))

    def _tx(self) -> _Tx:
        return _Tx(self._conn())

    # -- CDRs

    async def cdr_open(self, start: CdrStart) -> None:
        cdr = opened(start)
        marks = ", ".join("?" * len(CDR_COLUMNS.split(",")))
        await self._run(self._conn().execute,
                        f"INSERT INTO cdr ({CDR_COLUMNS}) VALUES ({marks})", cdr_params(cdr))

    async def cdr_update(self, call_id: str, **fields: Any) -> None:
        values = check_update(fields)
        if "answer" in values:
            values["answer"] = iso(values["answer"])
        if "vars" in values:
            values["vars"] = json.dumps(values["vars"], ensure_ascii=False)
        sets = ", ".join(f"{FIELD_COLUMN[k]} = ?" for k in values) or "call_id = call_id"
        cur = await self._run(self._conn().execute, f"UPDATE cdr SET {sets} WHERE call_id = ?",
                              (*values.values(), call_id))
        if cur.rowcount == 0:
            raise UnknownCallError(call_id)

    async def cdr_append(self, call_id: str, field: str, value: str) -> None:
        check_append(field)
        # json_insert with '$[#]' appends atomically inside SQLite (JSON1, built in since 3.38).
        cur = await self._run(self._conn().execute,
                              f"UPDATE cdr SET {field} = json_insert({field}, '$[#]', ?) "
                              "WHERE call_id = ?", (scrub(value), call_id))
        if cur.rowcount == 0:
            raise UnknownCallError(call_id)

    async def cdr_close(self, call_id: str, end: CdrEnd) -> None:
        await self._run(self._close_cdr, call_id, end)

    def _close_cdr(self, call_id: str, end: CdrEnd) -> None:
        with self._tx() as tx:
            row = tx.execute(f"SELECT {CDR_COLUMNS} FROM cdr WHERE call_id = ?",
                             (call_id,)).fetchone()
            if row is None:
                raise UnknownCallError(call_id)
            _write_closed(tx, closed(cdr_from_row(row), end))

    async def close_interrupted(self, node: str, now: datetime) -> int:
        return await self._run(self._close_interrupted, node, now)

    def _close_interrupted(self, node: str, now: datetime) -> int:
        with self._tx() as tx:
            rows = tx.execute(f"SELECT {CDR_COLUMNS} FROM cdr WHERE end_time IS NULL "
                              "AND node IN (?, '') AND start_time <= ?",
                              (node, iso(now))).fetchall()
            for row in rows:
                legs = group_legs(tx.execute(LEGS_OF.format(ids="?"), (row[0],)))
                (last,) = tx.execute("SELECT MAX(ts) FROM trace WHERE call_id = ?",
                                     (row[0],)).fetchone()
                _write_closed(tx, interrupted(cdr_from_row(row, legs.get(row[0], ())),
                                              from_iso(last)))
            return len(rows)

    async def cdr_leg(self, call_id: str, leg: int, data: Mapping[str, Any]) -> None:
        text = json.dumps(checked_leg(leg, data), ensure_ascii=False)
        # INSERT ... SELECT FROM cdr inserts nothing for an unknown call (rowcount 0). The WHERE
        # also keeps SQLite from parsing ON CONFLICT as a join constraint of the SELECT.
        cur = await self._run(self._conn().execute,
                              "INSERT INTO cdr_legs (call_id, leg, data) "
                              "SELECT call_id, ?, ? FROM cdr WHERE call_id = ? "
                              "ON CONFLICT (call_id, leg) DO UPDATE SET data = excluded.data",
                              (leg, text, call_id))
        if cur.rowcount == 0:
            raise UnknownCallError(call_id)

    async def cdr_queue(self, call_id: str, segment: QueueSegment) -> None:
        row = segment_row(call_id, checked_segment(segment), text_times=True)
        marks = ", ".join("?" * len(row))
        cur = await self._run(self._conn().execute,
                              f"INSERT INTO cdr_queue ({SEGMENT_COLUMNS}) "
                              f"SELECT {marks} FROM cdr WHERE call_id = ? "
                              "ON CONFLICT (call_id, number) DO UPDATE SET queue = excluded.queue, "
                              "entered = excluded.entered, position = excluded.position, "
                              "priority = excluded.priority, wait = excluded.wait, "
                              "agent = excluded.agent, outcome = excluded.outcome",
                              (*row, call_id))
        if cur.rowcount == 0:
            raise UnknownCallError(call_id)

    async def cdrs(self, since: datetime | None = None, limit: int = 100, *,
                   until: datetime | None = None) -> list[Cdr]:
        where, args = cdr_window(since, until, mark="?", text_times=True)
        return await self._run(self._read_cdrs, f"SELECT {CDR_COLUMNS} FROM cdr {where} "
                               "ORDER BY start_time DESC, call_id DESC LIMIT ?", (*args, limit))

    async def cdr(self, call_id: str) -> Cdr | None:
        rows = await self._run(self._read_cdrs, f"SELECT {CDR_COLUMNS} FROM cdr WHERE call_id = ?",
                               (call_id,))
        return rows[0] if rows else None

    def _read_cdrs(self, sql: str, args: tuple[Any, ...]) -> list[Cdr]:
        """CDRs and then all their legs in one more query, both in one read transaction."""
        db = self._conn()
        db.execute("BEGIN")  # deferred: a read snapshot, no write lock
        try:
            rows = db.execute(sql, args).fetchall()
            ids = json.dumps([r[0] for r in rows], ensure_ascii=False)
            each = "SELECT value FROM json_each(?)"
            legs = group_legs(db.execute(LEGS_OF.format(ids=each), (ids,)) if rows else ())
            queues = group_segments(db.execute(SEGMENTS_OF.format(ids=each), (ids,)).fetchall()
                                    if rows else [])
        finally:
            db.execute("COMMIT")
        return [cdr_from_row(r, legs.get(r[0], ()), queues.get(r[0], ())) for r in rows]

    def _fetch(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._conn().execute(sql, args).fetchall()

    # -- traces

    async def trace_append(self, call_id: str, entry: TraceEntry) -> None:
        e = checked_entry(entry)
        await self._run(self._conn().execute,
                        "INSERT INTO trace (call_id, seq, ts, kind, data) VALUES (?, ?, ?, ?, ?)",
                        (call_id, e.seq, iso(e.time), e.kind,
                         json.dumps(dict(e.data), ensure_ascii=False)))

    async def trace_extend(self, call_id: str, entries: Sequence[TraceEntry]) -> None:
        rows = [(call_id, e.seq, iso(e.time), e.kind, json.dumps(dict(e.data), ensure_ascii=False))
                for e in map(checked_entry, entries)]
        await self._run(self._insert_traces, rows)

    def _insert_traces(self, rows: list[tuple[Any, ...]]) -> None:
        with self._tx() as tx:  # one commit for the batch, not one per entry
            tx.executemany("INSERT INTO trace (call_id, seq, ts, kind, data) "
                           "VALUES (?, ?, ?, ?, ?)", rows)

    async def trace(self, call_id: str) -> list[TraceEntry]:
        rows = await self._run(self._fetch, "SELECT seq, ts, kind, data FROM trace "
                               "WHERE call_id = ? ORDER BY seq, id", (call_id,))
        return [TraceEntry(seq, datetime.fromisoformat(ts), kind, json.loads(data))
                for seq, ts, kind, data in rows]

    # -- queue journal and agent events

    async def journal_append(self, entries: Sequence[JournalEntry]) -> None:
        rows = [journal_row(checked_journal(e), text_times=True) for e in entries]
        marks = ", ".join("?" * len(JOURNAL_COLUMNS.split(",")))
        await self._run(self._insert_many, f"INSERT INTO queue_journal ({JOURNAL_COLUMNS}) "
                        f"VALUES ({marks})", rows)

    async def journal(self, *, queue: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[JournalEntry]:
        where, args = journal_filter(queue=queue, since=since, until=until, call_id=call_id,
                                     mark="?", text_times=True)
        rows = await self._run(self._fetch, f"SELECT {JOURNAL_COLUMNS} FROM queue_journal "
                               f"{where} ORDER BY time DESC, id DESC LIMIT ?", (*args, limit))
        return [journal_from_row(r) for r in reversed(rows)]

    async def callback_save(self, entry: CallbackEntry) -> None:
        row = callback_row(checked_callback(entry), text_times=True)
        await self._run(self._insert_many, f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) "
                        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) {CALLBACK_UPSERT}", [row])

    async def callbacks(self, *, state: str | None = "pending",
                        limit: int = 10000) -> list[CallbackEntry]:
        where, args = ("WHERE state = ?", (state,)) if state is not None else ("", ())
        rows = await self._run(self._fetch, f"SELECT {CALLBACK_COLUMNS} FROM callbacks {where} "
                               "ORDER BY requested, id LIMIT ?", (*args, limit))
        return [callback_from_row(r) for r in rows]

    async def agent_event_append(self, events: Sequence[AgentEvent]) -> None:
        rows = [agent_event_row(checked_agent_event(e), text_times=True) for e in events]
        await self._run(self._insert_many, f"INSERT INTO agent_events ({AGENT_EVENT_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)

    async def agent_events(self, *, agent: str | None = None, since: datetime | None = None,
                           until: datetime | None = None, node: str | None = None,
                           limit: int = 1000) -> list[AgentEvent]:
        where, args = agent_event_filter(agent=agent, since=since, until=until, node=node,
                                         mark="?", text_times=True)
        rows = await self._run(self._fetch, f"SELECT {AGENT_EVENT_COLUMNS} FROM agent_events "
                               f"{where} ORDER BY time DESC, id DESC LIMIT ?", (*args, limit))
        return [agent_event_from_row(r) for r in reversed(rows)]

    # -- campaigns

    async def campaign_open(self, name: str, script: str, now: datetime,
                            rows: Sequence[CampaignRow]) -> None:
        checked = [camp.checked_row(r) for r in rows]
        head, body = camp.insert_sql("?")
        await self._run(self._insert_many, head, [(name, script, iso(now))])
        await self._run(self._insert_many, body,
                        [camp.row_params(r, text_times=True) for r in checked])

    async def campaign_update(self, row: CampaignRow) -> None:
        r = camp.checked_row(row)
        await self._run(self._insert_many, camp.update_sql("?"),
                        [camp.update_params(r, text_times=True)])

    async def campaign_rows(self, name: str) -> list[CampaignRow]:
        rows = await self._run(self._fetch, camp.select_sql("?"), (name,))
        return [camp.row_from(tuple(r)) for r in rows]

    # -- voicemail

    async def voicemail_add(self, message: VoicemailMessage) -> VoicemailMessage:
        m = checked_message(message)
        cur = await self._run(self._conn().execute,
                              f"INSERT INTO voicemail ({VOICEMAIL_COLUMNS.split(', ', 1)[1]}) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", message_row(m, text_times=True))
        return replace(m, id=int(cur.lastrowid or 0))

    async def voicemail_messages(self, box: str, *, status: str | None = None,
                                 limit: int = 1000) -> list[VoicemailMessage]:
        where, args = message_filter(box, status, "?")
        rows = await self._run(self._fetch, f"SELECT {VOICEMAIL_COLUMNS} FROM voicemail {where} "
                               "ORDER BY time, id LIMIT ?", (*args, limit))
        return [message_from_row(r) for r in rows]

    async def voicemail_message(self, message_id: int) -> VoicemailMessage | None:
        rows = await self._run(self._fetch, f"SELECT {VOICEMAIL_COLUMNS} FROM voicemail "
                               "WHERE id = ?", (message_id,))
        return message_from_row(rows[0]) if rows else None

    async def voicemail_mark(self, message_id: int, status: str) -> bool:
        cur = await self._run(self._conn().execute, "UPDATE voicemail SET status = ? WHERE id = ?",
                              (checked_status(status), message_id))
        return bool(cur.rowcount)

    async def voicemail_counts(self, box: str) -> tuple[int, int]:
        rows = await self._run(self._fetch, "SELECT status, COUNT(*) FROM voicemail "
                               "WHERE box = ? GROUP BY status", (box,))
        counts = dict(rows)
        return int(counts.get("new", 0)), int(counts.get("heard", 0))

    def _insert_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with self._tx() as tx:  # one commit for the batch
                tx.executemany(sql, rows)

    # -- registrations

    async def registration_put(self, reg: Registration) -> None:
        row = registration_row(checked_registration(reg), text_times=True)
        marks = ", ".join("?" * len(row))
        await self._run(self._conn().execute, f"INSERT INTO registrations "
                        f"({REGISTRATION_COLUMNS}) VALUES ({marks}) {REGISTRATION_UPSERT}", row)

    async def registration_delete(self, extension: str, contact: str | None = None) -> int:
        if contact is None:
            cur = await self._run(self._conn().execute,
                                  "DELETE FROM registrations WHERE extension = ?", (extension,))
        else:
            cur = await self._run(self._conn().execute, "DELETE FROM registrations "
                                  "WHERE extension = ? AND contact = ?", (extension, contact))
        return int(cur.rowcount)

    async def registrations(self, now: datetime, *,
                            extension: str | None = None) -> list[Registration]:
        where, args = "WHERE expires > ?", [iso(now)]
        if extension is not None:
            where, args = where + " AND extension = ?", [*args, extension]
        rows = await self._run(self._fetch, f"SELECT {REGISTRATION_COLUMNS} FROM registrations "
                               f"{where} ORDER BY extension, contact", tuple(args))
        return [registration_from_row(r) for r in rows]

    async def registrations_purge(self, now: datetime) -> int:
        cur = await self._run(self._conn().execute,
                              "DELETE FROM registrations WHERE expires <= ?", (iso(now),))
        return int(cur.rowcount)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._conn().close)
            self._db = None
        self._pool.shutdown(wait=True)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
