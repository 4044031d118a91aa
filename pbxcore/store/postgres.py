"""PostgreSQL Store (psycopg 3, async): the production and multi-node backend.

Same schema as SQLite (timestamptz and jsonb where SQLite has text). One AsyncConnection in
autocommit mode; an asyncio.Lock serialises operations so one task's transaction never
interleaves with another's statements on the shared connection. Migrations run under a
transaction-scoped advisory lock so several nodes starting together migrate once.
Set the schema with the DSN, e.g. ``postgresql://u@h/db?options=-csearch_path%3Dpbx``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
    group_legs,
    interrupted,
    migrations,
    opened,
    scrub,
    utc,
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

if TYPE_CHECKING:
    import psycopg

_MIGRATION_LOCK = 0x7062_7863  # "pbxc": advisory lock key for schema migrations


class PostgresStore:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, dsn: str) -> PostgresStore:
        import psycopg  # lazy: only deployments on PostgreSQL need it loaded

        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        store = cls(conn)
        try:
            await store._migrate()
        except BaseException:
            await conn.close()
            raise
        return store

    async def _migrate(self) -> None:
        for version, statements in migrations("postgresql"):
            async with self._conn.transaction():
                await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                await self._conn.execute(SCHEMA_VERSION_DDL)
                cur = await self._conn.execute(
                    "SELECT 1 FROM schema_version WHERE version = %s", (version,))
                if await cur.fetchone():
                    continue
                for statement in statements:
                    await self._conn.execute(statement)  # no params: no placeholder parsing
                await self._conn.execute("INSERT INTO schema_version VALUES (%s, %s)",
                                         (version, datetime.now(UTC).isoformat()))

    def _params(self, cdr: Cdr) -> tuple[Any, ...]:
        from psycopg.types.json import Jsonb

        return (cdr.call_id, cdr.sip_call_id, cdr.start, cdr.answer, cdr.end, cdr.caller,
                cdr.caller_name, cdr.called, cdr.route, cdr.disposition, cdr.duration,
                cdr.billsec, cdr.hangup_by, cdr.hangup_cause, cdr.hangup_code,
                Jsonb(list(cdr.recordings)), Jsonb(list(cdr.script_errors)), Jsonb(dict(cdr.vars)),
                cdr.node)

    async def _write_closed(self, cdr: Cdr) -> None:
        """The end of ``cdr`` (inside the caller's transaction, under the lock)."""
        p = self._params(cdr)
        await self._conn.execute(
            "UPDATE cdr SET end_time = %s, disposition = %s, duration = %s, billsec = %s, "
            "hangup_by = %s, hangup_cause = %s, hangup_code = %s, recordings = %s, "
            "script_errors = %s, vars = %s WHERE call_id = %s", (p[4], *p[9:18], cdr.call_id))

    async def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        async with self._lock:
            cur = await self._conn.execute(sql, args)
            return cur.rowcount

    async def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            await cur.executemany(sql, rows)  # one transaction for the batch

    async def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        async with self._lock:
            cur = await self._conn.execute(sql, args)
            return await cur.fetchall()

    # -- CDRs

    async def cdr_open(self, start: CdrStart) -> None:
        marks = ", ".join(["%s"] * len(CDR_COLUMNS.split(",")))
        await self._execute(f"INSERT INTO cdr ({CDR_COLUMNS}) VALUES ({marks})",
                            self._params(opened(start)))

    async def cdr_update(self, call_id: str, **fields: Any) -> None:
        from psycopg.types.json import Jsonb

        values = check_update(fields)
        if "vars" in values:
            values["vars"] = Jsonb(values["vars"])
        sets = ", ".join(f"{FIELD_COLUMN[k]} = %s" for k in values) or "call_id = call_id"
        if not await self._execute(f"UPDATE cdr SET {sets} WHERE call_id = %s",
                                   (*values.values(), call_id)):
            raise UnknownCallError(call_id)

    async def cdr_append(self, call_id: str, field: str, value: str) -> None:
        check_append(field)
        if not await self._execute(f"UPDATE cdr SET {field} = {field} || jsonb_build_array(%s::text) "
                                   "WHERE call_id = %s", (scrub(value), call_id)):
            raise UnknownCallError(call_id)

    async def cdr_close(self, call_id: str, end: CdrEnd) -> None:
        async with self._lock, self._conn.transaction():
            cur = await self._conn.execute(
                f"SELECT {CDR_COLUMNS} FROM cdr WHERE call_id = %s FOR UPDATE",
                (call_id,))
            row = await cur.fetchone()
            if row is None:
                raise UnknownCallError(call_id)
            await self._write_closed(closed(cdr_from_row(row), end))

    async def close_interrupted(self, node: str, now: datetime) -> int:
        # FOR UPDATE: a node restarting twice at once (two processes, one id) closes each once.
        async with self._lock, self._conn.transaction():
            cur = await self._conn.execute(
                f"SELECT {CDR_COLUMNS} FROM cdr WHERE end_time IS NULL AND node IN (%s, '') "
                "AND start_time <= %s FOR UPDATE", (node, utc(now)))
            rows = await cur.fetchall()
            for row in rows:
                cur = await self._conn.execute(LEGS_OF.format(ids="%s"), (row[0],))
                legs = group_legs(await cur.fetchall())
                cur = await self._conn.execute("SELECT MAX(ts) FROM trace WHERE call_id = %s",
                                               (row[0],))
                last = (await cur.fetchone() or (None,))[0]
                await self._write_closed(interrupted(cdr_from_row(row, legs.get(row[0], ())),
                                                     None if last is None else utc(last)))
            return len(rows)

    async def cdr_leg(self, call_id: str, leg: int, data: Mapping[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        # INSERT ... SELECT FROM cdr inserts nothing for an unknown call (rowcount 0); ON CONFLICT
        # makes a second write of the same leg (from any node) replace the first.
        if not await self._execute("INSERT INTO cdr_legs (call_id, leg, data) "
                                   "SELECT call_id, %s::integer, %s::jsonb FROM cdr "
                                   "WHERE call_id = %s "
                                   "ON CONFLICT (call_id, leg) DO UPDATE SET data = EXCLUDED.data",
                                   (leg, Jsonb(checked_leg(leg, data)), call_id)):
            raise UnknownCallError(call_id)

    async def cdr_queue(self, call_id: str, segment: QueueSegment) -> None:
        row = segment_row(call_id, checked_segment(segment), text_times=False)
        # Typed placeholders: in a SELECT list PostgreSQL cannot infer a parameter's type.
        if not await self._execute(
                f"INSERT INTO cdr_queue ({SEGMENT_COLUMNS}) "
                "SELECT %s::text, %s::integer, %s::text, %s::timestamptz, %s::integer, "
                "%s::integer, %s::double precision, %s::text, %s::text FROM cdr "
                "WHERE call_id = %s ON CONFLICT (call_id, number) DO UPDATE SET "
                "queue = EXCLUDED.queue, entered = EXCLUDED.entered, "
                "position = EXCLUDED.position, priority = EXCLUDED.priority, "
                "wait = EXCLUDED.wait, agent = EXCLUDED.agent, outcome = EXCLUDED.outcome",
                (*row, call_id)):
            raise UnknownCallError(call_id)

    async def cdrs(self, since: datetime | None = None, limit: int = 100, *,
                   until: datetime | None = None) -> list[Cdr]:
        where, args = cdr_window(since, until, mark="%s", text_times=False)
        return await self._read_cdrs(f"SELECT {CDR_COLUMNS} FROM cdr {where} "
                                     "ORDER BY start_time DESC, call_id DESC LIMIT %s",
                                     (*args, limit))

    async def cdr(self, call_id: str) -> Cdr | None:
        rows = await self._read_cdrs(f"SELECT {CDR_COLUMNS} FROM cdr WHERE call_id = %s",
                                     (call_id,))
        return rows[0] if rows else None

    async def _read_cdrs(self, sql: str, args: tuple[Any, ...]) -> list[Cdr]:
        """CDRs and then all their legs in one more query. No shared snapshot (two round trips,
        not five): a leg written in between only makes the answer newer, never inconsistent."""
        async with self._lock:
            rows = await (await self._conn.execute(sql, args)).fetchall()
            legs: dict[str, tuple[dict[str, Any], ...]] = {}
            queues: dict[str, tuple[QueueSegment, ...]] = {}
            if rows:
                ids, each = [r[0] for r in rows], "SELECT unnest(%s::text[])"
                cur = await self._conn.execute(LEGS_OF.format(ids=each), (ids,))
                legs = group_legs(await cur.fetchall())
                cur = await self._conn.execute(SEGMENTS_OF.format(ids=each), (ids,))
                queues = group_segments(await cur.fetchall())
        return [cdr_from_row(r, legs.get(r[0], ()), queues.get(r[0], ())) for r in rows]

    # -- traces

    async def trace_append(self, call_id: str, entry: TraceEntry) -> None:
        from psycopg.types.json import Jsonb

        e = checked_entry(entry)
        await self._execute("INSERT INTO trace (call_id, seq, ts, kind, data) "
                            "VALUES (%s, %s, %s, %s, %s)",
                            (call_id, e.seq, e.time, e.kind, Jsonb(dict(e.data))))

    async def trace_extend(self, call_id: str, entries: Sequence[TraceEntry]) -> None:
        from psycopg.types.json import Jsonb

        rows = [(call_id, e.seq, e.time, e.kind, Jsonb(dict(e.data)))
                for e in map(checked_entry, entries)]
        if rows:
            await self._executemany("INSERT INTO trace (call_id, seq, ts, kind, data) "
                                    "VALUES (%s, %s, %s, %s, %s)", rows)

    async def trace(self, call_id: str) -> list[TraceEntry]:
        rows = await self._fetch("SELECT seq, ts, kind, data FROM trace WHERE call_id = %s "
                                 "ORDER BY seq, id", (call_id,))
        return [TraceEntry(seq, utc(ts), kind, data) for seq, ts, kind, data in rows]

    # -- queue journal and agent events

    async def journal_append(self, entries: Sequence[JournalEntry]) -> None:
        rows = [journal_row(checked_journal(e), text_times=False) for e in entries]
        if rows:
            await self._executemany(f"INSERT INTO queue_journal ({JOURNAL_COLUMNS}) VALUES "
                                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                                    rows)

    async def journal(self, *, queue: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[JournalEntry]:
        where, args = journal_filter(queue=queue, since=since, until=until, call_id=call_id,
                                     mark="%s", text_times=False)
        rows = await self._fetch(f"SELECT {JOURNAL_COLUMNS} FROM queue_journal {where} "
                                 "ORDER BY time DESC, id DESC LIMIT %s", (*args, limit))
        return [journal_from_row(r) for r in reversed(rows)]

    async def callback_save(self, entry: CallbackEntry) -> None:
        row = callback_row(checked_callback(entry), text_times=False)
        await self._execute(f"INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                            f"{CALLBACK_UPSERT}", row)

    async def callbacks(self, *, state: str | None = "pending",
                        limit: int = 10000) -> list[CallbackEntry]:
        where, args = ("WHERE state = %s", (state,)) if state is not None else ("", ())
        rows = await self._fetch(f"SELECT {CALLBACK_COLUMNS} FROM callbacks {where} "
                                 "ORDER BY requested, id LIMIT %s", (*args, limit))
        return [callback_from_row(r) for r in rows]

    async def agent_event_append(self, events: Sequence[AgentEvent]) -> None:
        rows = [agent_event_row(checked_agent_event(e), text_times=False) for e in events]
        if rows:
            await self._executemany(f"INSERT INTO agent_events ({AGENT_EVENT_COLUMNS}) "
                                    "VALUES (%s, %s, %s, %s, %s, %s)", rows)

    async def agent_events(self, *, agent: str | None = None, since: datetime | None = None,
                           until: datetime | None = None, node: str | None = None,
                           limit: int = 1000) -> list[AgentEvent]:
        where, args = agent_event_filter(agent=agent, since=since, until=until, node=node,
                                         mark="%s", text_times=False)
        rows = await self._fetch(f"SELECT {AGENT_EVENT_COLUMNS} FROM agent_events {where} "
                                 "ORDER BY time DESC, id DESC LIMIT %s", (*args, limit))
        return [agent_event_from_row(r) for r in reversed(rows)]

    # -- campaigns

    async def campaign_open(self, name: str, script: str, now: datetime,
                            rows: Sequence[CampaignRow]) -> None:
        checked = [camp.checked_row(r) for r in rows]
        head, body = camp.insert_sql("%s")
        await self._execute(head, (name, script, now))
        if checked:
            await self._executemany(body.replace("%s, %s, %s, %s, %s", "%s, %s, %s, %s::jsonb, %s", 1),
                                    [camp.row_params(r, text_times=False) for r in checked])

    async def campaign_update(self, row: CampaignRow) -> None:
        r = camp.checked_row(row)
        await self._execute(camp.update_sql("%s"), camp.update_params(r, text_times=False))

    async def campaign_rows(self, name: str) -> list[CampaignRow]:
        rows = await self._fetch(camp.select_sql("%s"), (name,))
        return [camp.row_from(tuple(r)) for r in rows]

    # -- voicemail

    async def voicemail_add(self, message: VoicemailMessage) -> VoicemailMessage:
        m = checked_message(message)
        rows = await self._fetch(f"INSERT INTO voicemail ({VOICEMAIL_COLUMNS.split(', ', 1)[1]}) "
                                 "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id", message_row(m, text_times=False))
        return replace(m, id=int(rows[0][0]))

    async def voicemail_messages(self, box: str, *, status: str | None = None,
                                 limit: int = 1000) -> list[VoicemailMessage]:
        where, args = message_filter(box, status, "%s")
        rows = await self._fetch(f"SELECT {VOICEMAIL_COLUMNS} FROM voicemail {where} "
                                 "ORDER BY time, id LIMIT %s", (*args, limit))
        return [message_from_row(r) for r in rows]

    async def voicemail_message(self, message_id: int) -> VoicemailMessage | None:
        rows = await self._fetch(f"SELECT {VOICEMAIL_COLUMNS} FROM voicemail WHERE id = %s",
                                 (message_id,))
        return message_from_row(rows[0]) if rows else None

    async def voicemail_mark(self, message_id: int, status: str) -> bool:
        return bool(await self._execute("UPDATE voicemail SET status = %s WHERE id = %s",
                                        (checked_status(status), message_id)))

    async def voicemail_counts(self, box: str) -> tuple[int, int]:
        rows = await self._fetch("SELECT status, COUNT(*) FROM voicemail WHERE box = %s "
                                 "GROUP BY status", (box,))
        counts = dict(rows)
        return int(counts.get("new", 0)), int(counts.get("heard", 0))

    # -- registrations

    async def registration_put(self, reg: Registration) -> None:
        row = registration_row(checked_registration(reg), text_times=False)
        marks = ", ".join(["%s"] * len(row))
        await self._execute(f"INSERT INTO registrations ({REGISTRATION_COLUMNS}) "
                            f"VALUES ({marks}) {REGISTRATION_UPSERT}", row)

    async def registration_delete(self, extension: str, contact: str | None = None) -> int:
        if contact is None:
            return await self._execute("DELETE FROM registrations WHERE extension = %s",
                                       (extension,))
        return await self._execute("DELETE FROM registrations WHERE extension = %s "
                                   "AND contact = %s", (extension, contact))

    async def registrations(self, now: datetime, *,
                            extension: str | None = None) -> list[Registration]:
        where = "WHERE expires > %s"
        args: tuple[Any, ...] = (utc(now),)
        if extension is not None:
            where, args = where + " AND extension = %s", (*args, extension)
        rows = await self._fetch(f"SELECT {REGISTRATION_COLUMNS} FROM registrations {where} "
                                 "ORDER BY extension, contact", args)
        return [registration_from_row(r) for r in rows]

    async def registrations_purge(self, now: datetime) -> int:
        return await self._execute("DELETE FROM registrations WHERE expires <= %s", (utc(now),))

    async def close(self) -> None:
        await self._conn.close()
