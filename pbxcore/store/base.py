"""The store seam: call records (CDRs), per-call traces, the ACD's queue journal and agent
events (store/journal.py), and the Protocol every backend meets.

One CDR per call, never one row per leg: the legs the switch dialled for it (B2BUA) are nested in
``Cdr.legs``, stored in the child table ``cdr_legs`` and written with ``cdr_leg`` (insert or replace
leg N). A CDR is opened when the call arrives, updated as it progresses (answer time, route), and
closed once with a ``CdrEnd``; ``duration`` and ``billsec`` are computed at close from the stored
times so every backend agrees. Times are timezone-aware UTC datetimes in these dataclasses and ISO 8601 strings
in ``to_json()``; a naive datetime is our own bug and raises ValueError.

Text that came from a peer (caller name, script output) may hold what no backend can store: NUL,
which PostgreSQL refuses in text and jsonb, and lone surrogates, which are how the SIP parser
(UTF-8 with ``surrogateescape``) carries bytes that are not UTF-8 (``12%FF%FE34``, a display name
``\\xff\\xfe``) and which neither SQLite nor PostgreSQL can encode. Every string the store writes,
dict keys too, goes through ``store_text`` (via ``scrub``), the same on every backend: NUL becomes
U+FFFD, an escaped byte (U+DC80..U+DCFF) becomes the four characters ``\\xNN`` (so the byte's value
is kept and readable), any other lone surrogate becomes ``\\uDNNN``. Valid text is unchanged. The rules live in
store/values.py.
"""

from __future__ import annotations

import json
import os
import time
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

# The ACD's records live in journal.py (base.py would pass 400 lines); they are part of this
# seam and importable from here.
from pbxcore.store.callbacks import CallbackEntry as CallbackEntry
from pbxcore.store.campaigns import CampaignRow as CampaignRow
from pbxcore.store.journal import AgentEvent as AgentEvent
from pbxcore.store.journal import JournalEntry as JournalEntry
from pbxcore.store.journal import QueueSegment as QueueSegment
from pbxcore.store.registrations import Registration as Registration

# Re-exported (backends and other code import them from here, as before they moved).
from pbxcore.store.values import from_iso as from_iso
from pbxcore.store.values import iso as iso
from pbxcore.store.values import scrub as scrub
from pbxcore.store.values import store_text as store_text
from pbxcore.store.values import utc as utc
from pbxcore.store.voicemail import VoicemailMessage as VoicemailMessage

Disposition = Literal["answered", "no answer", "busy", "failed", "rejected", "abandoned"]
# callee: the dialled party; interrupted: the switch died mid-call (closed at its next start)
HangupBy = Literal["caller", "callee", "switch", "script", "shutdown", "interrupted"]
LegDisposition = Literal["answered", "busy", "no answer", "declined", "failed", "canceled"]
TraceKind = Literal["event", "script", "action", "sip", "error", "note"]

DISPOSITIONS: tuple[str, ...] = get_args(Disposition)
HANGUP_BY: tuple[str, ...] = get_args(HangupBy)
LEG_DISPOSITIONS: tuple[str, ...] = get_args(LegDisposition)
TRACE_KINDS: tuple[str, ...] = get_args(TraceKind)

_EMPTY: Mapping[str, str] = types.MappingProxyType({})


class UnknownCallError(LookupError):
    """No CDR with this call id was opened: a bug in the caller of the store."""


@dataclass(frozen=True)
class CdrStart:
    """What is known when a call arrives."""

    call_id: str  # our unique id (new_call_id()), also the script's PBX_CALL_ID
    sip_call_id: str  # the INVITE's Call-ID; NOT unique (pyVoIP reuses them across runs)
    start: datetime  # when the INVITE arrived (UTC)
    caller: str  # user part of From
    called: str  # user part of the Request-URI
    caller_name: str = ""  # display name of From, as sent by the peer
    route: str | None = None  # which route handled it (e.g. script path), None if none matched
    node: str = ""  # [node] id of the switch that handles it (see close_interrupted)


@dataclass(frozen=True)
class CdrEnd:
    """How a call ended; given once to cdr_close."""

    end: datetime  # when the call was torn down (UTC)
    disposition: Disposition
    hangup_by: HangupBy
    hangup_cause: str = ""  # readable reason, e.g. "BYE from caller" or "script timeout"
    hangup_code: int | None = None  # SIP status that ended it, if any (486, 603, ...)
    recordings: tuple[str, ...] | None = None  # None keeps what cdr_append collected
    script_errors: tuple[str, ...] | None = None  # None keeps what cdr_append collected
    vars: Mapping[str, str] | None = None  # call variables at the end; None keeps the stored ones


@dataclass(frozen=True)
class Cdr:
    """One call record as stored; open calls have end/disposition/duration None."""

    call_id: str
    sip_call_id: str
    start: datetime
    caller: str
    called: str
    caller_name: str = ""
    route: str | None = None
    answer: datetime | None = None  # when the call was answered (200 OK sent)
    end: datetime | None = None
    disposition: str | None = None
    duration: float | None = None  # seconds, start to end
    billsec: float | None = None  # seconds, answer to end (0 if never answered)
    hangup_by: str | None = None
    hangup_cause: str = ""
    hangup_code: int | None = None
    recordings: tuple[str, ...] = ()
    script_errors: tuple[str, ...] = ()
    vars: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    # Dialled legs ordered by leg number: {"leg": N, **data given to cdr_leg} (see checked_leg).
    legs: tuple[Mapping[str, Any], ...] = ()
    # Queue visits ordered by number (cdr_queue); every agent rung is a leg above.
    queues: tuple[QueueSegment, ...] = ()
    node: str = ""  # [node] id of the switch that opened it

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (times as ISO 8601 UTC strings) for `pbx cdr --json` and exports."""
        return {
            "call_id": self.call_id, "sip_call_id": self.sip_call_id,
            "start": iso(self.start), "answer": iso(self.answer), "end": iso(self.end),
            "caller": self.caller, "caller_name": self.caller_name, "called": self.called,
            "route": self.route, "disposition": self.disposition, "duration": self.duration,
            "billsec": self.billsec, "hangup_by": self.hangup_by,
            "hangup_cause": self.hangup_cause, "hangup_code": self.hangup_code,
            "recordings": list(self.recordings), "script_errors": list(self.script_errors),
            "vars": dict(self.vars), "legs": [dict(leg) for leg in self.legs],
            "queues": [q.to_json() for q in self.queues], "node": self.node,
        }


@dataclass(frozen=True)
class TraceEntry:
    """One line of a call's trace. ``data`` must be JSON-able (str keys; str/num/bool/None/list/dict)."""

    seq: int  # order within the call, assigned by the call's owner; ties keep insertion order
    time: datetime  # UTC
    kind: TraceKind
    data: Mapping[str, Any]  # for script runs: event, env, stdin, stdout, stderr, exit, duration, error

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": iso(self.time), "kind": self.kind, "data": dict(self.data)}


UPDATABLE = frozenset({"answer", "caller", "caller_name", "called", "route", "vars"})
APPENDABLE = frozenset({"recordings", "script_errors"})


class Store(Protocol):
    """Where calls are recorded. All three backends pass tests/integration/store."""

    async def cdr_open(self, start: CdrStart) -> None: ...

    async def cdr_update(self, call_id: str, **fields: Any) -> None:
        """Set fields named in UPDATABLE (answer=datetime, route=str, vars=dict, ...)."""

    async def cdr_append(self, call_id: str, field: str, value: str) -> None:
        """Add one item to a list field named in APPENDABLE (recordings, script_errors)."""

    async def cdr_close(self, call_id: str, end: CdrEnd) -> None: ...

    async def cdr_leg(self, call_id: str, leg: int, data: Mapping[str, Any]) -> None:
        """Insert or replace leg number ``leg`` (1, 2, ...) of the call; ``data`` is JSON-able,
        normally: target, uri, ring_start, answer, end (ISO strings or None), disposition (one of
        LEG_DISPOSITIONS), sip_code (int or None), reason, talk_seconds (float or None),
        hold_seconds (of talk_seconds, while either side held the call; float or None),
        recordings (list). Allowed after cdr_close too (a leg may be finished last)."""

    async def cdr_queue(self, call_id: str, segment: QueueSegment) -> None:
        """Insert or replace queue segment ``segment.number`` of the call (Cdr.queues).
        Allowed after cdr_close too."""

    async def cdrs(self, since: datetime | None = None, limit: int = 100, *,
                   until: datetime | None = None) -> list[Cdr]:
        """CDRs that started at or after ``since`` and before ``until`` (exclusive), newest
        first, at most ``limit``, each with its legs and queue segments (read in one query each
        for all of them, not one per CDR)."""
        ...

    async def cdr(self, call_id: str) -> Cdr | None: ...

    async def trace_append(self, call_id: str, entry: TraceEntry) -> None: ...

    async def trace_extend(self, call_id: str, entries: Sequence[TraceEntry]) -> None:
        """Several entries in one write (one transaction where the backend has them)."""

    async def trace(self, call_id: str) -> list[TraceEntry]:
        """The call's trace ordered by seq (then insertion); [] for an unknown call."""
        ...

    async def journal_append(self, entries: Sequence[JournalEntry]) -> None:
        """Queue journal rows, in one write (one transaction where the backend has them)."""

    async def journal(self, *, queue: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[JournalEntry]:
        """The newest ``limit`` rows matching (since inclusive, until exclusive), returned
        oldest first as a log reads; ties in time keep the order they were appended in."""
        ...

    async def agent_event_append(self, events: Sequence[AgentEvent]) -> None:
        """Agent state changes, in one write."""

    async def agent_events(self, *, agent: str | None = None, since: datetime | None = None,
                           until: datetime | None = None, node: str | None = None,
                           limit: int = 1000) -> list[AgentEvent]:
        """The newest ``limit`` agent events matching, oldest first (as journal())."""

    async def callback_save(self, entry: CallbackEntry) -> None:
        """Insert a callback, or update its attempts, state and updated time (by id)."""

    async def callbacks(self, *, state: str | None = "pending",
                        limit: int = 10000) -> list[CallbackEntry]:
        """Callbacks in `state` (None: all), oldest request first."""

    async def campaign_open(self, name: str, script: str, now: datetime,
                            rows: Sequence[CampaignRow]) -> None:
        """Create campaign `name` with `rows`; rows already there keep their progress."""

    async def campaign_update(self, row: CampaignRow) -> None:
        """Write one row's status, attempts, result, call id and time."""

    async def campaign_rows(self, name: str) -> list[CampaignRow]:
        """Every row of campaign `name`, by row number ([] for an unknown campaign)."""

    async def voicemail_add(self, message: VoicemailMessage) -> VoicemailMessage:
        """Index a new message; returns it with the id the store gave it."""
        ...

    async def voicemail_messages(self, box: str, *, status: str | None = None,
                                 limit: int = 1000) -> list[VoicemailMessage]:
        """A box's messages, oldest first: one status, or (None) all but deleted ones."""
        ...

    async def voicemail_message(self, message_id: int) -> VoicemailMessage | None: ...

    async def voicemail_mark(self, message_id: int, status: str) -> bool:
        """Set a message's status (new, heard, deleted); False when there is no such id."""
        ...

    async def voicemail_counts(self, box: str) -> tuple[int, int]:
        """(new, heard) messages of a box: what a message-waiting lamp shows."""
        ...

    async def close_interrupted(self, node: str, now: datetime) -> int:
        """Close every CDR that ``node`` (or a version before node ids, node '') left open and
        that started at or before ``now``: the switch died mid-call. Called once at start-up,
        before any call is accepted. Each is closed as ``interrupted`` (see ``interrupted``) at
        its last known time; returns how many were closed."""
        ...

    async def registration_put(self, reg: Registration) -> None:
        """Insert or replace the binding (extension, contact)."""

    async def registration_delete(self, extension: str, contact: str | None = None) -> int:
        """Remove one binding, or every binding of ``extension`` when ``contact`` is None
        (un-REGISTER, ``Contact: *``); returns how many rows went."""
        ...

    async def registrations(self, now: datetime, *,
                            extension: str | None = None) -> list[Registration]:
        """Live bindings (``expires`` after ``now``), of one extension or all, ordered by
        extension then contact."""
        ...

    async def registrations_purge(self, now: datetime) -> int:
        """Delete every binding expired at ``now``; returns how many."""
        ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------- helpers shared by backends

CDR_COLUMNS = ("call_id, sip_call_id, start_time, answer_time, end_time, caller, caller_name, "
               "called, route, disposition, duration, billsec, hangup_by, hangup_cause, "
               "hangup_code, recordings, script_errors, vars, node")
FIELD_COLUMN = {"answer": "answer_time", "caller": "caller", "caller_name": "caller_name",
                "called": "called", "route": "route", "vars": "vars"}  # cdr_update name -> column


def cdr_from_row(row: Sequence[Any], legs: tuple[Mapping[str, Any], ...] = (),
                 queues: tuple[QueueSegment, ...] = ()) -> Cdr:
    """A Cdr from an SQL row in CDR_COLUMNS order: JSON as text (SQLite) or decoded (jsonb),
    times as ISO text (SQLite) or datetime (timestamptz); ``legs`` from group_legs, ``queues``
    from journal.group_segments."""

    def when(v: Any) -> datetime | None:
        return utc(v) if isinstance(v, datetime) else from_iso(v)

    def js(v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v

    start = when(row[2])
    assert start is not None
    return Cdr(call_id=row[0], sip_call_id=row[1], start=start, answer=when(row[3]),
               end=when(row[4]), caller=row[5], caller_name=row[6], called=row[7], route=row[8],
               disposition=row[9], duration=row[10], billsec=row[11], hangup_by=row[12],
               hangup_cause=row[13], hangup_code=row[14], recordings=tuple(js(row[15])),
               script_errors=tuple(js(row[16])), vars=js(row[17]), legs=legs, node=row[18],
               queues=queues)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_call_id(now: float | None = None) -> str:
    """A 26-character ULID-like id: 48-bit milliseconds then 80 random bits, sortable by time."""
    ms = int((time.time() if now is None else now) * 1000)
    n = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


def cdr_window(since: datetime | None, until: datetime | None, *, mark: str,
               text_times: bool) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (or "") and its arguments for cdrs(): since inclusive, until exclusive."""
    parts, args = [], []
    for sql, value in (("start_time >= {m}", since), ("start_time < {m}", until)):
        if value is not None:
            parts.append(sql.format(m=mark))
            args.append(iso(value) if text_times else utc(value))
    return ("WHERE " + " AND ".join(parts)) if parts else "", tuple(args)


def check_update(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validated, scrubbed fields for cdr_update; unknown names are a TypeError (our bug)."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise TypeError(f"cdr_update: cannot set {sorted(unknown)}; allowed: {sorted(UPDATABLE)}")
    out = {k: scrub(v) for k, v in fields.items()}
    if "answer" in out and out["answer"] is not None:
        out["answer"] = utc(out["answer"])
    if "vars" in out:
        out["vars"] = scrub({str(k): str(v) for k, v in out["vars"].items()})
    return out


def checked_leg(leg: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` for cdr_leg validated and normalised (NUL scrubbed, JSON round trip, so tuples
    become lists and the memory backend returns what SQL ones do). Misuse is our bug: ValueError
    or TypeError. The leg number is not stored in ``data``; ``with_leg`` adds it on reading."""
    if isinstance(leg, bool) or not isinstance(leg, int) or leg < 1:
        raise ValueError(f"cdr_leg: leg number must be an int >= 1, not {leg!r}")
    if not isinstance(data, Mapping):
        raise TypeError(f"cdr_leg: data must be a mapping, not {type(data).__name__}")
    if "leg" in data and data["leg"] != leg:
        raise ValueError(f"cdr_leg: data says leg {data['leg']!r} but this is leg {leg}")
    disposition = data.get("disposition")
    if disposition is not None and disposition not in LEG_DISPOSITIONS:
        raise ValueError(f"cdr_leg: disposition {disposition!r} is not one of {LEG_DISPOSITIONS}")
    # allow_nan=False: PostgreSQL's jsonb refuses NaN/Infinity, so no backend takes them.
    text = json.dumps({k: v for k, v in scrub(data).items() if k != "leg"}, allow_nan=False)
    out: dict[str, Any] = json.loads(text)
    return out


def with_leg(leg: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored leg as Cdr.legs shows it: its number first, then its data."""
    return {"leg": leg, **data}


LEGS_OF = "SELECT call_id, leg, data FROM cdr_legs WHERE call_id IN ({ids}) ORDER BY call_id, leg"


def group_legs(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[dict[str, Any], ...]]:
    """(call_id, leg, data) rows ordered by call_id, leg -> legs per call. ``data`` is JSON text
    (SQLite) or already decoded (jsonb)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for call_id, leg, data in rows:
        out.setdefault(call_id, []).append(
            with_leg(leg, json.loads(data) if isinstance(data, str) else data))
    return {k: tuple(v) for k, v in out.items()}


def check_append(field: str) -> None:
    if field not in APPENDABLE:
        raise TypeError(f"cdr_append: {field!r} is not one of {sorted(APPENDABLE)}")


def closed(cdr: Cdr, end: CdrEnd) -> Cdr:
    """``cdr`` with the end applied: duration and billsec derived from the stored times."""
    if end.disposition not in DISPOSITIONS or end.hangup_by not in HANGUP_BY:
        raise ValueError(f"cdr_close: bad disposition/hangup_by {end.disposition!r}/{end.hangup_by!r}")
    stop = utc(end.end)
    duration = max(0.0, (stop - cdr.start).total_seconds())
    billsec = max(0.0, (stop - cdr.answer).total_seconds()) if cdr.answer else 0.0
    return replace(
        cdr, end=stop, disposition=end.disposition, duration=round(duration, 3),
        billsec=round(billsec, 3), hangup_by=end.hangup_by, hangup_cause=scrub(end.hangup_cause),
        hangup_code=end.hangup_code,
        recordings=cdr.recordings if end.recordings is None else tuple(scrub(list(end.recordings))),
        script_errors=(cdr.script_errors if end.script_errors is None
                       else tuple(scrub(list(end.script_errors)))),
        vars=cdr.vars if end.vars is None else scrub({str(k): str(v) for k, v in end.vars.items()}),
    )


def opened(start: CdrStart) -> Cdr:
    """The Cdr row for a freshly opened call (scrubbed, UTC)."""
    return Cdr(call_id=start.call_id, sip_call_id=scrub(start.sip_call_id), start=utc(start.start),
               caller=scrub(start.caller), called=scrub(start.called),
               caller_name=scrub(start.caller_name), route=scrub(start.route),
               node=scrub(start.node))


INTERRUPTED_CAUSE = "interrupted: the switch stopped before the call ended"


def interrupted(cdr: Cdr, last_trace: datetime | None) -> Cdr:
    """``cdr`` closed by start-up recovery: ended at the last time anything was known of it
    (its latest trace entry, answer, leg time or start), disposition ``answered`` if it was
    answered else ``failed``, hangup_by ``interrupted``."""
    times = [cdr.start, cdr.answer, last_trace]
    for leg in cdr.legs:
        for key in ("ring_start", "answer", "end"):
            value = leg.get(key)
            if isinstance(value, str):
                try:
                    times.append(from_iso(value))
                except ValueError:  # a leg's data is free-form JSON: ignore what is no time
                    pass
    last = max(utc(t) for t in times if t is not None and t.tzinfo is not None)
    return closed(cdr, CdrEnd(end=last, disposition="answered" if cdr.answer else "failed",
                              hangup_by="interrupted", hangup_cause=INTERRUPTED_CAUSE))


def checked_entry(entry: TraceEntry) -> TraceEntry:
    if entry.kind not in TRACE_KINDS:
        raise ValueError(f"trace kind {entry.kind!r} is not one of {TRACE_KINDS}")
    return replace(entry, time=utc(entry.time), data=scrub(entry.data))


# ---------------------------------------------------------------- schema migrations

_DIALECTS = {
    "sqlite": {"{TS}": "TEXT", "{JSON}": "TEXT", "{REAL}": "REAL",
               "{SERIAL_PK}": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {"{TS}": "timestamptz", "{JSON}": "jsonb", "{REAL}": "double precision",
                   "{SERIAL_PK}": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
}
SCHEMA_VERSION_DDL = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)"


def migrations(dialect: str) -> list[tuple[int, list[str]]]:
    """(version, statements) for every migrations/NNNN_name.sql, in order, for this dialect."""
    from importlib.resources import files

    out: list[tuple[int, list[str]]] = []
    for item in sorted((files("pbxcore.store") / "migrations").iterdir(), key=lambda f: f.name):
        if not item.name.endswith(".sql"):
            continue
        sql = "\n".join(line for line in item.read_text(encoding="utf-8").splitlines()
                        if not line.lstrip().startswith("--"))
        for token, text in _DIALECTS[dialect].items():
            sql = sql.replace(token, text)
        statements = [s.strip() for s in sql.split(";\n") if s.strip().rstrip(";")]
        out.append((int(item.name.split("_", 1)[0]), [s.rstrip(";") for s in statements]))
    return out
