"""In-memory Store for unit tests: same behaviour as the SQL backends, nothing persisted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbxcore.store.base import (
    Cdr,
    CdrEnd,
    CdrStart,
    TraceEntry,
    UnknownCallError,
    check_append,
    check_update,
    checked_entry,
    checked_leg,
    closed,
    interrupted,
    opened,
    scrub,
    utc,
    with_leg,
)
from pbxcore.store.callbacks import CallbackEntry, checked_callback
from pbxcore.store.campaigns import CampaignRow, checked_row
from pbxcore.store.journal import (
    AgentEvent,
    JournalEntry,
    QueueSegment,
    checked_agent_event,
    checked_journal,
    checked_segment,
    in_window,
)
from pbxcore.store.registrations import Registration, checked_registration
from pbxcore.store.voicemail import (
    VoicemailMessage,
    checked_message,
    checked_status,
)


class MemoryStore:
    def __init__(self) -> None:
        self._campaigns: dict[str, dict[int, CampaignRow]] = {}
        self._cdrs: dict[str, Cdr] = {}
        self._traces: dict[str, list[TraceEntry]] = {}
        self._journal: list[JournalEntry] = []
        self._agent_events: list[AgentEvent] = []
        self._callbacks: dict[str, CallbackEntry] = {}
        self._voicemail: dict[int, VoicemailMessage] = {}
        self._registrations: dict[tuple[str, str], Registration] = {}

    def _get(self, call_id: str) -> Cdr:
        try:
            return self._cdrs[call_id]
        except KeyError:
            raise UnknownCallError(call_id) from None

    async def cdr_open(self, start: CdrStart) -> None:
        if start.call_id in self._cdrs:
            raise ValueError(f"CDR {start.call_id} is already open")
        self._cdrs[start.call_id] = opened(start)

    async def cdr_update(self, call_id: str, **fields: Any) -> None:
        self._cdrs[call_id] = replace(self._get(call_id), **check_update(fields))

    async def cdr_append(self, call_id: str, field: str, value: str) -> None:
        check_append(field)
        cdr = self._get(call_id)
        items: dict[str, Any] = {field: (*getattr(cdr, field), scrub(value))}
        self._cdrs[call_id] = replace(cdr, **items)

    async def cdr_close(self, call_id: str, end: CdrEnd) -> None:
        self._cdrs[call_id] = closed(self._get(call_id), end)

    async def cdr_leg(self, call_id: str, leg: int, data: Mapping[str, Any]) -> None:
        row = with_leg(leg, checked_leg(leg, data))  # validate first, as the SQL backends do
        cdr = self._get(call_id)
        legs = [x for x in cdr.legs if x["leg"] != leg] + [row]
        self._cdrs[call_id] = replace(cdr, legs=tuple(sorted(legs, key=lambda x: x["leg"])))

    async def cdr_queue(self, call_id: str, segment: QueueSegment) -> None:
        row = checked_segment(segment)
        cdr = self._get(call_id)
        queues = [q for q in cdr.queues if q.number != row.number] + [row]
        self._cdrs[call_id] = replace(cdr, queues=tuple(sorted(queues, key=lambda q: q.number)))

    async def cdrs(self, since: datetime | None = None, limit: int = 100, *,
                   until: datetime | None = None) -> list[Cdr]:
        rows = [c for c in self._cdrs.values() if in_window(c.start, since, until)]
        rows.sort(key=lambda c: (c.start, c.call_id), reverse=True)
        return rows[:limit]

    async def cdr(self, call_id: str) -> Cdr | None:
        return self._cdrs.get(call_id)

    async def trace_append(self, call_id: str, entry: TraceEntry) -> None:
        self._traces.setdefault(call_id, []).append(checked_entry(entry))

    async def trace_extend(self, call_id: str, entries: Sequence[TraceEntry]) -> None:
        self._traces.setdefault(call_id, []).extend(checked_entry(e) for e in entries)

    async def trace(self, call_id: str) -> list[TraceEntry]:
        return sorted(self._traces.get(call_id, []), key=lambda e: e.seq)  # stable: ties keep order

    async def journal_append(self, entries: Sequence[JournalEntry]) -> None:
        self._journal.extend([checked_journal(e) for e in entries])  # all checked, then added

    async def journal(self, *, queue: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[JournalEntry]:
        rows = [e for e in self._journal if in_window(e.time, since, until)
                and queue in (None, e.queue) and call_id in (None, e.call_id)]
        rows.sort(key=lambda e: e.time)  # stable: ties keep the order of appending
        return rows[-limit:] if limit > 0 else []

    async def callback_save(self, entry: CallbackEntry) -> None:
        e = checked_callback(entry)
        old = self._callbacks.get(e.id)
        if old is not None:  # as the SQL upsert: only attempts, state and updated change
            e = replace(old, attempts=e.attempts, state=e.state, updated=e.updated)
        self._callbacks[e.id] = replace(e, updated=e.updated or e.requested)

    async def callbacks(self, *, state: str | None = "pending",
                        limit: int = 10000) -> list[CallbackEntry]:
        rows = sorted((e for e in self._callbacks.values() if state in (None, e.state)),
                      key=lambda e: (e.requested, e.id))
        return rows[:limit] if limit > 0 else []

    async def agent_event_append(self, events: Sequence[AgentEvent]) -> None:
        self._agent_events.extend([checked_agent_event(e) for e in events])

    async def agent_events(self, *, agent: str | None = None, since: datetime | None = None,
                           until: datetime | None = None, node: str | None = None,
                           limit: int = 1000) -> list[AgentEvent]:
        rows = [e for e in self._agent_events if in_window(e.time, since, until)
                and agent in (None, e.agent) and node in (None, e.node)]
        rows.sort(key=lambda e: e.time)
        return rows[-limit:] if limit > 0 else []

    async def voicemail_add(self, message: VoicemailMessage) -> VoicemailMessage:
        stored = replace(checked_message(message), id=len(self._voicemail) + 1)
        self._voicemail[stored.id] = stored
        return stored

    async def voicemail_messages(self, box: str, *, status: str | None = None,
                                 limit: int = 1000) -> list[VoicemailMessage]:
        if status is not None:
            checked_status(status)
        rows = [m for m in self._voicemail.values() if m.box == box
                and (m.status == status if status is not None else m.status != "deleted")]
        rows.sort(key=lambda m: (m.time, m.id))
        return rows[:limit] if limit > 0 else []

    async def voicemail_message(self, message_id: int) -> VoicemailMessage | None:
        return self._voicemail.get(message_id)

    async def voicemail_mark(self, message_id: int, status: str) -> bool:
        checked_status(status)
        if message_id not in self._voicemail:
            return False
        self._voicemail[message_id] = replace(self._voicemail[message_id], status=status)
        return True

    async def voicemail_counts(self, box: str) -> tuple[int, int]:
        statuses = [m.status for m in self._voicemail.values() if m.box == box]
        return statuses.count("new"), statuses.count("heard")

    async def close_interrupted(self, node: str, now: datetime) -> int:
        stale = [c for c in self._cdrs.values()
                 if c.end is None and c.node in (node, "") and c.start <= utc(now)]
        for cdr in stale:
            times = [e.time for e in self._traces.get(cdr.call_id, [])]
            self._cdrs[cdr.call_id] = interrupted(cdr, max(times) if times else None)
        return len(stale)

    async def registration_put(self, reg: Registration) -> None:
        row = checked_registration(reg)
        self._registrations[(row.extension, row.contact)] = row

    async def registration_delete(self, extension: str, contact: str | None = None) -> int:
        keys = [k for k in self._registrations
                if k[0] == extension and contact in (None, k[1])]
        for key in keys:
            del self._registrations[key]
        return len(keys)

    async def registrations(self, now: datetime, *,
                            extension: str | None = None) -> list[Registration]:
        when = utc(now)
        return [r for _, r in sorted(self._registrations.items())
                if r.expires > when and extension in (None, r.extension)]

    async def registrations_purge(self, now: datetime) -> int:
        when = utc(now)
        gone = [k for k, r in self._registrations.items() if r.expires <= when]
        for key in gone:
            del self._registrations[key]
        return len(gone)

    async def close(self) -> None:
        pass

    # -- campaigns

    async def campaign_open(self, name: str, script: str, now: datetime,
                            rows: Sequence[CampaignRow]) -> None:
        checked = [checked_row(r) for r in rows]
        table = self._campaigns.setdefault(name, {})
        for r in checked:
            table.setdefault(r.row, r)

    async def campaign_update(self, row: CampaignRow) -> None:
        r = checked_row(row)
        table = self._campaigns.get(r.campaign, {})
        if r.row in table:
            table[r.row] = replace(table[r.row], status=r.status, attempts=r.attempts,
                                   result=r.result, call_id=r.call_id, updated=r.updated)

    async def campaign_rows(self, name: str) -> list[CampaignRow]:
        return [r for _, r in sorted(self._campaigns.get(name, {}).items())]
