"""What the store keeps of the ACD: the queue journal, CDR queue segments and agent events.

* The **queue journal** is Asterisk's queue_log, so reports written for it carry over: one row per
  queue fact with the columns ``time, callid, queuename, agent, event, data1..data5`` (event names
  from ``pbxcore.acd.spec.JOURNAL_EVENTS``, the data fields as Asterisk fills them, e.g. CONNECT's
  data1 = holdtime), plus ``node`` (which switch wrote it; nullable until several nodes share a
  store) and ``extra``, a JSON object for what Asterisk has no column for.  A fact about no call
  or no queue says ``NONE``, as Asterisk's does.
* A **queue segment** is one visit of a call to a queue (a call may queue twice), stored with its
  CDR (table ``cdr_queue``) and read back in ``Cdr.queues``; insert-or-replace by number, so the
  service may write it on entry and again when the caller leaves.
* **Agent events** (table ``agent_events``) are the agents' state changes, so reports and a
  restarted node can tell which agent sessions it left open.

Validation here is shared by the three backends; a bad value is our own bug: ValueError.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pbxcore.acd.spec import AGENT_STATES, JOURNAL_EVENTS, QUEUE_RESULTS
from pbxcore.store.values import from_iso, iso, scrub, utc

NONE = "NONE"  # Asterisk's queue_log word for "no call" / "no queue" / "no agent"
QUEUE_OUTCOMES: tuple[str, ...] = ("answered", "abandoned", *QUEUE_RESULTS, "shutdown")
"""How a queue segment ended: an agent answered, the caller hung up, a `queue` event result,
or the switch stopped while the caller waited."""
AGENT_EVENT_STATES: tuple[str, ...] = AGENT_STATES
_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


@dataclass(frozen=True)
class JournalEntry:
    """One queue_log row."""

    time: datetime  # UTC
    queue: str  # queuename; NONE for a fact about no queue (an agent paused everywhere)
    event: str  # one of JOURNAL_EVENTS
    call_id: str = NONE  # callid: our call id (PBX_CALL_ID), NONE for agent facts
    agent: str = NONE  # the agent's extension, NONE when no agent is involved
    data: tuple[str, ...] = ()  # data1..data5, as Asterisk fills them for the event
    node: str | None = None  # the switch node that wrote it
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # JSON: beyond data1..5

    def to_json(self) -> dict[str, Any]:
        return {"time": iso(self.time), "callid": self.call_id, "queuename": self.queue,
                "agent": self.agent, "event": self.event,
                **{f"data{i}": self.padded[i - 1] for i in range(1, 6)},
                "node": self.node, "extra": dict(self.extra)}

    @property
    def padded(self) -> tuple[str, str, str, str, str]:
        d = (*self.data, "", "", "", "", "")
        return d[0], d[1], d[2], d[3], d[4]


@dataclass(frozen=True)
class QueueSegment:
    """One visit of a call to a queue, as its CDR shows it."""

    number: int  # 1, 2, ...: the call's Nth queue visit (insert or replace by number)
    queue: str
    entered: datetime  # UTC
    position: int  # position on entry, 1 = first; 0 = never joined (full, empty)
    priority: int = 0
    wait: float | None = None  # seconds waited; None while waiting
    agent: str | None = None  # who answered
    outcome: str | None = None  # one of QUEUE_OUTCOMES; None while waiting

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "queue": self.queue, "entered": iso(self.entered),
                "position": self.position, "priority": self.priority, "wait": self.wait,
                "agent": self.agent, "outcome": self.outcome}


@dataclass(frozen=True)
class AgentEvent:
    """An agent entered `state` (one of acd.spec.AGENT_STATES)."""

    time: datetime  # UTC
    agent: str  # extension
    state: str
    reason: str = ""  # pause reason (no-answer for auto-pause), or why logged out
    queue: str | None = None  # None: every queue the agent is a member of
    node: str | None = None


def checked_journal(entry: JournalEntry) -> JournalEntry:
    if entry.event not in JOURNAL_EVENTS:
        raise ValueError(f"journal event {entry.event!r} is not one of {JOURNAL_EVENTS}")
    if len(entry.data) > 5 or not all(isinstance(d, str) for d in entry.data):
        raise ValueError(f"journal data must be at most 5 strings, not {entry.data!r}")
    if not entry.queue or not entry.call_id or not entry.agent:
        raise ValueError("journal queue, call_id and agent must not be empty (NONE for none)")
    # allow_nan=False: jsonb refuses NaN, so no backend takes it (as for CDR legs).
    extra = json.loads(json.dumps(scrub(dict(entry.extra)), allow_nan=False))
    return replace(entry, time=utc(entry.time), queue=scrub(entry.queue),
                   call_id=scrub(entry.call_id), agent=scrub(entry.agent),
                   data=tuple(scrub(list(entry.data))), node=scrub(entry.node), extra=extra)


def checked_segment(segment: QueueSegment) -> QueueSegment:
    if isinstance(segment.number, bool) or not isinstance(segment.number, int) or \
            segment.number < 1:
        raise ValueError(f"cdr_queue: segment number must be an int >= 1, not {segment.number!r}")
    if segment.outcome is not None and segment.outcome not in QUEUE_OUTCOMES:
        raise ValueError(f"cdr_queue: outcome {segment.outcome!r} is not one of {QUEUE_OUTCOMES}")
    if segment.position < 0 or (segment.wait is not None and segment.wait < 0):
        raise ValueError(f"cdr_queue: negative position or wait in {segment!r}")
    return replace(segment, queue=scrub(segment.queue), entered=utc(segment.entered),
                   agent=scrub(segment.agent))


def checked_agent_event(event: AgentEvent) -> AgentEvent:
    if event.state not in AGENT_EVENT_STATES:
        raise ValueError(f"agent state {event.state!r} is not one of {AGENT_EVENT_STATES}")
    return replace(event, time=utc(event.time), agent=scrub(event.agent),
                   reason=scrub(event.reason), queue=scrub(event.queue), node=scrub(event.node))


# ---------------------------------------------------------------- SQL shared by both backends

JOURNAL_COLUMNS = ("time, callid, queuename, agent, event, data1, data2, data3, data4, data5, "
                   "node, extra")
SEGMENT_COLUMNS = "call_id, number, queue, entered, position, priority, wait, agent, outcome"
AGENT_EVENT_COLUMNS = "time, agent, state, reason, queue, node"
SEGMENTS_OF = (f"SELECT {SEGMENT_COLUMNS} FROM cdr_queue WHERE call_id IN ({{ids}}) "
               "ORDER BY call_id, number")


def journal_row(e: JournalEntry, *, text_times: bool) -> tuple[Any, ...]:
    """Values in JOURNAL_COLUMNS order; `extra` as JSON text (the caller wraps it for jsonb)."""
    return (iso(e.time) if text_times else e.time, e.call_id, e.queue, e.agent, e.event,
            *e.padded, e.node, json.dumps(dict(e.extra), ensure_ascii=False))


def journal_from_row(row: Sequence[Any]) -> JournalEntry:
    data = tuple(row[5:10])
    while data and data[-1] == "":
        data = data[:-1]
    extra = json.loads(row[11]) if isinstance(row[11], str) else (row[11] or {})
    return JournalEntry(time=_when(row[0]), call_id=row[1], queue=row[2], agent=row[3],
                        event=row[4], data=data, node=row[10], extra=extra)


def segment_row(call_id: str, s: QueueSegment, *, text_times: bool) -> tuple[Any, ...]:
    return (call_id, s.number, s.queue, iso(s.entered) if text_times else s.entered, s.position,
            s.priority, s.wait, s.agent, s.outcome)


def group_segments(rows: Sequence[Sequence[Any]]) -> dict[str, tuple[QueueSegment, ...]]:
    """SEGMENTS_OF rows (ordered by call_id, number) -> segments per call."""
    out: dict[str, list[QueueSegment]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(QueueSegment(
            number=r[1], queue=r[2], entered=_when(r[3]), position=r[4], priority=r[5],
            wait=r[6], agent=r[7], outcome=r[8]))
    return {k: tuple(v) for k, v in out.items()}


def agent_event_row(e: AgentEvent, *, text_times: bool) -> tuple[Any, ...]:
    return (iso(e.time) if text_times else e.time, e.agent, e.state, e.reason, e.queue, e.node)


def agent_event_from_row(row: Sequence[Any]) -> AgentEvent:
    return AgentEvent(time=_when(row[0]), agent=row[1], state=row[2], reason=row[3],
                      queue=row[4], node=row[5])


def _when(value: Any) -> datetime:
    when = utc(value) if isinstance(value, datetime) else from_iso(value)
    assert when is not None
    return when


def journal_filter(*, queue: str | None, since: datetime | None, until: datetime | None,
                   call_id: str | None, mark: str, text_times: bool) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") and its arguments for a journal query."""
    return _where([("queuename = {m}", queue), ("time >= {m}", since), ("time < {m}", until),
                   ("callid = {m}", call_id)], mark, text_times)


def agent_event_filter(*, agent: str | None, since: datetime | None, until: datetime | None,
                       node: str | None, mark: str, text_times: bool) -> tuple[str, list[Any]]:
    return _where([("agent = {m}", agent), ("time >= {m}", since), ("time < {m}", until),
                   ("node = {m}", node)], mark, text_times)


def _where(conds: list[tuple[str, Any]], mark: str, text_times: bool) -> tuple[str, list[Any]]:
    parts, args = [], []
    for sql, value in conds:
        if value is None:
            continue
        parts.append(sql.format(m=mark))
        args.append((iso(value) if text_times else utc(value)) if isinstance(value, datetime)
                    else value)
    return ("WHERE " + " AND ".join(parts)) if parts else "", args


def in_window(time: datetime, since: datetime | None, until: datetime | None) -> bool:
    """The memory backend's form of the time filter (since inclusive, until exclusive)."""
    t = utc(time)
    return (since is None or t >= utc(since)) and (until is None or t < utc(until))
