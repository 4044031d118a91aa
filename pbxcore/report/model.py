"""One record per queued call (a queue visit) and per call (a CDR), built from store rows.

Pure: rows in, records out.  The inputs are typed by the Protocols below, which the store's
JournalEntry, Cdr and AgentEvent meet as they are (this layer imports no store code).

A visit's **status** is named once, here (Wazo's stat_call_on_queue status, built the same way
from queue_log): the journal row that ends the visit decides it.

| journal row that ends the visit | status |
|---|---|
| CONNECT (then COMPLETECALLER / COMPLETEAGENT / TRANSFER / SHUTDOWN) | answered |
| ABANDON | abandoned |
| EXITWITHTIMEOUT | timeout |
| EXITWITHKEY | exit_key |
| EXITEMPTY | empty |
| FULL | full |
| CALLBACK | callback |
| SHUTDOWN before an agent answered | shutdown |
| INTERRUPTED before an agent answered (the switch died) | interrupted |
| none yet | waiting |

Wait (seconds in the queue) is CONNECT's holdtime for answered visits and the waittime field of
the ending row otherwise; talk is COMPLETE*'s calltime (TRANSFER's calltime, SHUTDOWN's).

**Direction**: the switch answers every call it records (a CDR is an arriving INVITE; what it
dials are legs of that CDR).  A call whose caller is one of the switch's own extensions
(``[[users]]``) is ``out`` (an agent or phone of ours calling out or internally); any other
caller came in over a trunk or a public route: ``in``.  The DID of an inbound call is its
called number.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, get_args

VisitStatus = Literal["answered", "abandoned", "timeout", "exit_key", "empty", "full",
                      "callback", "shutdown", "interrupted", "waiting"]
STATUSES: tuple[str, ...] = get_args(VisitStatus)
ENDED_BY: Mapping[str, VisitStatus] = {
    "ABANDON": "abandoned", "EXITWITHTIMEOUT": "timeout", "EXITWITHKEY": "exit_key",
    "EXITEMPTY": "empty", "FULL": "full", "CALLBACK": "callback", "SHUTDOWN": "shutdown",
    "INTERRUPTED": "interrupted"}
# Which data field holds the waittime of a row that ends an unanswered visit (0-based).
_WAIT_FIELD = {"EXITWITHKEY": 3}
_TALK_FIELD = {"COMPLETECALLER": 1, "COMPLETEAGENT": 1, "TRANSFER": 3, "SHUTDOWN": 1}
Direction = Literal["in", "out"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
NONE = "NONE"  # the journal's word for no call / no agent


class JournalRow(Protocol):
    @property
    def time(self) -> datetime: ...
    @property
    def queue(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def call_id(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def data(self) -> tuple[str, ...]: ...


class SegmentRow(Protocol):
    @property
    def queue(self) -> str: ...
    @property
    def agent(self) -> str | None: ...


class CdrRow(Protocol):
    @property
    def call_id(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def caller(self) -> str: ...
    @property
    def called(self) -> str: ...
    @property
    def route(self) -> str | None: ...
    @property
    def answer(self) -> datetime | None: ...
    @property
    def disposition(self) -> str | None: ...
    @property
    def duration(self) -> float | None: ...
    @property
    def billsec(self) -> float | None: ...
    @property
    def legs(self) -> tuple[Mapping[str, Any], ...]: ...
    @property
    def queues(self) -> Sequence[SegmentRow]: ...


@dataclass(frozen=True)
class Call:
    """One CDR as the report sees it."""

    call_id: str
    start: datetime
    caller: str
    called: str
    route: str
    direction: Direction
    disposition: str  # "in progress" while open
    duration: float
    billsec: float
    queues: tuple[str, ...] = ()  # queues it visited
    agents: tuple[str, ...] = ()  # agents it reached (queue segments and answered legs)
    hold: float | None = None  # seconds on hold, from the legs' hold_seconds when recorded

    @property
    def answered(self) -> bool:
        return self.disposition == "answered"


@dataclass(frozen=True)
class Visit:
    """One queued call: a visit of a call to a queue, from ENTERQUEUE to the row ending it."""

    call_id: str
    queue: str
    entered: datetime
    status: VisitStatus = "waiting"
    wait: float = 0.0
    agent: str | None = None  # who answered
    connected: datetime | None = None  # when the agent answered (the CONNECT row)
    talk: float = 0.0  # seconds connected to the agent
    wrapup: float = 0.0  # the agent's wrap-up after this call (from agent events)
    hold: float | None = None  # from the call's legs, when recorded
    call: Call | None = None  # its CDR, when the store has it

    @property
    def answered(self) -> bool:
        return self.status == "answered"

    @property
    def abandoned(self) -> bool:
        return self.status == "abandoned"


def _num(data: tuple[str, ...], i: int) -> float:
    try:
        return max(0.0, float(data[i]))
    except (IndexError, ValueError):
        return 0.0


def visits(rows: Iterable[JournalRow], *, until: datetime | None = None) -> list[Visit]:
    """The visits that entered before ``until`` (all when None), from journal rows oldest first.
    A visit's later rows may come after ``until``: it is counted whole, by its entry time."""
    out: list[Visit] = []
    open_: dict[tuple[str, str], int] = {}  # (call, queue) -> index in out
    for r in rows:
        if r.call_id == NONE:
            continue
        key = (r.call_id, r.queue)
        if r.event == "ENTERQUEUE":
            if until is None or r.time < until:
                open_[key] = len(out)
                out.append(Visit(r.call_id, r.queue, r.time))
            continue
        i = open_.get(key)
        if i is None:
            if r.event in ("FULL", "EXITEMPTY") and (until is None or r.time < until):
                # refused at the door: no ENTERQUEUE row, the visit is this one row
                out.append(Visit(r.call_id, r.queue, r.time, ENDED_BY[r.event]))
            continue
        v = out[i]
        if r.event == "CONNECT":
            out[i] = replace(v, status="answered", wait=_num(r.data, 0), agent=r.agent,
                             connected=r.time)
        elif v.status == "answered" and r.event in _TALK_FIELD:
            out[i] = replace(v, talk=_num(r.data, _TALK_FIELD[r.event]))
            del open_[key]
        elif v.status == "answered" and r.event == "INTERRUPTED":
            # data3 is the seconds since it entered, as far as the journal knew
            out[i] = replace(v, talk=max(0.0, _num(r.data, 2) - v.wait))
            del open_[key]
        elif r.event in ENDED_BY:
            out[i] = replace(v, status=ENDED_BY[r.event],
                             wait=_num(r.data, _WAIT_FIELD.get(r.event, 2)))
            del open_[key]
    return out


def direction(caller: str, extensions: frozenset[str], route: str | None = None) -> Direction:
    """"out" for a call an extension made or the switch originated (CDR route "originate" or
    "originate:SCRIPT", call/originate.py), else "in"."""
    if route is not None and (route == "originate" or route.startswith("originate:")):
        return "out"
    return "out" if caller in extensions else "in"


def calls(cdrs: Iterable[CdrRow], extensions: frozenset[str]) -> list[Call]:
    """One Call per CDR; ``extensions`` are the switch's own users (see the module docstring)."""
    out = []
    for c in cdrs:
        agents = {s.agent for s in c.queues if s.agent}
        agents |= {str(leg.get("target")) for leg in c.legs
                   if leg.get("disposition") == "answered" and leg.get("target")}
        held = [float(leg["hold_seconds"]) for leg in c.legs
                if isinstance(leg.get("hold_seconds"), int | float)]
        out.append(Call(
            call_id=c.call_id, start=c.start, caller=c.caller, called=c.called,
            route=c.route or "", direction=direction(c.caller, extensions, c.route),
            disposition=c.disposition or "in progress", duration=c.duration or 0.0,
            billsec=c.billsec or 0.0, queues=tuple(dict.fromkeys(s.queue for s in c.queues)),
            agents=tuple(sorted(agents)), hold=sum(held) if held else None))
    return out


@dataclass(frozen=True)
class Filters:
    """`pbx report` / `pbx cdr` filters; None = no filter."""

    queue: str | None = None
    agent: str | None = None
    direction: Direction | None = None
    number: str | None = None  # a glob (fnmatch: * ? [..]) matched against caller or called
    min_duration: float | None = None  # seconds, the whole call (CDR duration)

    @property
    def on_calls(self) -> bool:
        """Any filter that needs the call's CDR."""
        return (self.direction, self.number, self.min_duration) != (None, None, None)

    def call_ok(self, c: Call) -> bool:
        if self.queue is not None and self.queue not in c.queues:
            return False
        if self.agent is not None and self.agent not in c.agents:
            return False
        return self._call_fields_ok(c)

    def _call_fields_ok(self, c: Call) -> bool:
        if self.direction is not None and c.direction != self.direction:
            return False
        if self.number is not None and not (fnmatch.fnmatchcase(c.caller, self.number)
                                             or fnmatch.fnmatchcase(c.called, self.number)):
            return False
        return self.min_duration is None or c.duration >= self.min_duration

    def visit_ok(self, v: Visit) -> bool:
        if self.queue is not None and v.queue != self.queue:
            return False
        if self.agent is not None and v.agent != self.agent:
            return False
        if v.call is None:
            return not self.on_calls
        return self._call_fields_ok(v.call)


@dataclass(frozen=True)
class Period:
    """The report's window: since inclusive, until exclusive (UTC)."""

    since: datetime
    until: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.until - self.since).total_seconds())

    def clip(self, start: datetime, end: datetime) -> float:
        """Seconds of [start, end) inside the period."""
        return max(0.0, (min(end, self.until) - max(start, self.since)).total_seconds())


# How far past the period the journal is read, so a visit that entered before `until` is
# counted whole (its CONNECT and COMPLETE rows may come later).
SPILL = timedelta(hours=12)


@dataclass
class Dataset:
    """Everything a report is computed from, already filtered."""

    period: Period
    calls: list[Call]
    visits: list[Visit]
    service_level: Mapping[str, float] = field(default_factory=dict)  # queue -> seconds
    default_service_level: float = 20.0

    def threshold(self, queue: str) -> float:
        return self.service_level.get(queue, self.default_service_level)


def attach(vs: list[Visit], cs: Iterable[Call]) -> list[Visit]:
    """Visits with their call's CDR (and its hold time) attached."""
    by_id = {c.call_id: c for c in cs}
    out = []
    for v in vs:
        c = by_id.get(v.call_id)
        out.append(replace(v, call=c, hold=c.hold if c is not None and v.answered else None))
    return out
