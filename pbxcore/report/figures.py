"""Report figures by grouping (hour, day, week, agent, queue, did, route).  Pure.

Definitions (docs/operations.md, "pbx report"), over the visits in a group:

* offered: every visit (also those refused at the door: full, empty); answered, abandoned and
  the other statuses of model.STATUSES count the visits that ended so.
* short abandons: abandoned after waiting at most ``short_abandon`` seconds (default 5).
* ASA: mean wait of answered visits.
* SL (the default, Asterisk's ServicelevelPerf): answered within the queue's ``service_level``
  seconds / answered.  SL2 (ServicelevelPerf2): the same / (answered + abandoned).
* talk: seconds connected to the agent (hold included: the caller is held while bridged);
  hold: from the CDR legs' ``hold_seconds`` where recorded; wrap-up: the agent's wrap-up
  after the call (agent events).  AHT = (talk + wrap-up) / answered.
* abandon rate: abandoned / offered.
* per agent, from agent events clipped to the period: logged-in time, pause time (by reason),
  occupancy = (time talking + in wrap-up) / (logged-in - paused).
* calls: the CDRs in the group (per DID: inbound calls by called number).

Time groupings are in UTC: hour "2026-05-04 09:00", day "2026-05-04", ISO week "2026-W19".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from pbxcore.report.agents import AgentTime
from pbxcore.report.model import Call, Dataset, Visit

Grouping = Literal["hour", "day", "week", "agent", "queue", "did", "route"]
GROUPINGS: tuple[str, ...] = get_args(Grouping)
SlDefinition = Literal["perf", "perf2"]  # which SL the table and chart show (both in exports)
SL_DEFINITIONS: tuple[str, ...] = get_args(SlDefinition)
DEFAULT_SHORT_ABANDON = 5.0


def time_key(by: str, t: datetime) -> str:
    if by == "hour":
        return t.strftime("%Y-%m-%d %H:00")
    if by == "day":
        return t.strftime("%Y-%m-%d")
    year, week, _ = t.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Figures:
    """One row of a report."""

    key: str
    calls: int = 0
    calls_answered: int = 0
    offered: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    short_abandoned: int = 0
    within_sl: int = 0
    wait_answered: float = 0.0  # total, for ASA
    max_wait: float = 0.0
    talk: float = 0.0
    hold: float | None = None  # None: not recorded on any call of the group
    wrapup: float = 0.0
    # agents (filled in the agent grouping and the totals)
    logged_in: float | None = None
    paused: float | None = None
    busy: float | None = None
    pauses: dict[str, float] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return self.statuses.get("answered", 0)

    @property
    def abandoned(self) -> int:
        return self.statuses.get("abandoned", 0)

    @property
    def asa(self) -> float | None:
        return self.wait_answered / self.answered if self.answered else None

    @property
    def sl(self) -> float | None:
        """ServicelevelPerf: answered within the threshold / answered."""
        return self.within_sl / self.answered if self.answered else None

    @property
    def sl2(self) -> float | None:
        """ServicelevelPerf2: answered within the threshold / (answered + abandoned)."""
        n = self.answered + self.abandoned
        return self.within_sl / n if n else None

    @property
    def aht(self) -> float | None:
        return (self.talk + self.wrapup) / self.answered if self.answered else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    @property
    def occupancy(self) -> float | None:
        if self.logged_in is None or self.busy is None:
            return None
        staffed = self.logged_in - (self.paused or 0.0)
        return self.busy / staffed if staffed > 0 else None

    def add_visit(self, v: Visit, threshold: float, short_abandon: float) -> None:
        self.offered += 1
        self.statuses[v.status] = self.statuses.get(v.status, 0) + 1
        if v.answered:
            self.wait_answered += v.wait
            self.within_sl += v.wait <= threshold
            self.talk += v.talk
            self.wrapup += v.wrapup
            if v.hold is not None:
                self.hold = (self.hold or 0.0) + v.hold
        elif v.abandoned and v.wait <= short_abandon:
            self.short_abandoned += 1
        if v.status != "waiting":
            self.max_wait = max(self.max_wait, v.wait)

    def add_call(self, c: Call) -> None:
        self.calls += 1
        self.calls_answered += c.answered

    def add_agent(self, t: AgentTime) -> None:
        self.logged_in = (self.logged_in or 0.0) + t.logged_in
        self.paused = (self.paused or 0.0) + t.paused
        self.busy = (self.busy or 0.0) + t.busy
        for reason, s in t.pauses.items():
            self.pauses[reason] = self.pauses.get(reason, 0.0) + s

    def to_json(self) -> dict[str, Any]:
        """Every figure, ratios as fractions (0.85), times in seconds."""
        out: dict[str, Any] = {
            "key": self.key, "calls": self.calls, "calls_answered": self.calls_answered,
            "offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "statuses": dict(sorted(self.statuses.items())),
            "asa": _r(self.asa), "max_wait": _r(self.max_wait), "sl": _r(self.sl, 4),
            "sl2": _r(self.sl2, 4), "within_sl": self.within_sl,
            "abandon_rate": _r(self.abandon_rate, 4), "aht": _r(self.aht),
            "talk": _r(self.talk), "hold": _r(self.hold), "wrapup": _r(self.wrapup),
        }
        if self.logged_in is not None:
            out |= {"logged_in": _r(self.logged_in), "paused": _r(self.paused),
                    "busy": _r(self.busy), "occupancy": _r(self.occupancy, 4),
                    "pauses": {k: _r(v) for k, v in sorted(self.pauses.items())}}
        return out


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


@dataclass
class Report:
    """The rows of one grouping and their totals (computed from the data, not summed: a call
    in two queues is one call in the totals)."""

    by: str
    rows: list[Figures]
    totals: Figures


def report(data: Dataset, by: str, agents: Mapping[str, AgentTime] | None = None, *,
           short_abandon: float = DEFAULT_SHORT_ABANDON) -> Report:
    """Figures of ``data`` grouped ``by`` one of GROUPINGS.  ``agents``: time per state of the
    agents to show (already filtered), for the agent grouping and the totals."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}: one of {GROUPINGS}")
    agents = agents or {}
    rows: dict[str, Figures] = {}

    def row(key: str) -> Figures:
        return rows.setdefault(key, Figures(key))

    visit_keys, call_keys = _keys(by)
    for v in data.visits:
        for k in visit_keys(v):
            row(k).add_visit(v, data.threshold(v.queue), short_abandon)
    for c in data.calls:
        for k in call_keys(c):
            row(k).add_call(c)
    if by == "agent":
        for name, t in agents.items():
            row(name).add_agent(t)
    totals = Figures("total")
    for v in data.visits:
        totals.add_visit(v, data.threshold(v.queue), short_abandon)
    for c in data.calls:
        if by != "did" or c.direction == "in":
            totals.add_call(c)
    for t in agents.values():
        totals.add_agent(t)
    return Report(by, [rows[k] for k in sorted(rows)], totals)


def _keys(by: str) -> tuple[Callable[[Visit], Iterable[str]], Callable[[Call], Iterable[str]]]:
    if by in ("hour", "day", "week"):
        return (lambda v: (time_key(by, v.entered),)), (lambda c: (time_key(by, c.start),))
    if by == "queue":
        return (lambda v: (v.queue,)), (lambda c: c.queues)
    if by == "agent":
        return (lambda v: (v.agent,) if v.agent else ()), (lambda c: c.agents)
    if by == "did":
        return ((lambda v: (v.call.called,) if v.call and v.call.direction == "in" else ()),
                (lambda c: (c.called,) if c.direction == "in" else ()))
    return ((lambda v: (v.call.route,) if v.call else ()), (lambda c: (c.route,)))


def load_by_hour_of_day(data: Dataset) -> list[tuple[int, int, int, int]]:
    """(hour 0..23 UTC, calls, queued calls offered, answered) over the whole period: the
    day's load profile a supervisor staffs by."""
    calls, offered, answered = [0] * 24, [0] * 24, [0] * 24
    for c in data.calls:
        calls[c.start.hour] += 1
    for v in data.visits:
        offered[v.entered.hour] += 1
        answered[v.entered.hour] += v.answered
    return [(h, calls[h], offered[h], answered[h]) for h in range(24)]


Kind = Literal["text", "count", "ratio", "seconds", "duration"]
"""How an exported figure is formatted: ratio as a percentage, seconds as a mean (ASA, AHT),
duration as a total time (h:mm:ss)."""

EXPORT_FIELDS: tuple[tuple[str, Kind, Callable[[Figures], Any]], ...] = (
    ("calls", "count", lambda f: f.calls),
    ("calls answered", "count", lambda f: f.calls_answered),
    ("offered", "count", lambda f: f.offered),
    ("answered", "count", lambda f: f.answered),
    ("abandoned", "count", lambda f: f.abandoned),
    ("short abandons", "count", lambda f: f.short_abandoned),
    *((status, "count", (lambda f, s=status: f.statuses.get(s, 0)))
      for status in ("timeout", "exit_key", "empty", "full", "callback", "shutdown",
                     "interrupted", "waiting")),
    ("ASA (s)", "seconds", lambda f: f.asa),
    ("max wait (s)", "seconds", lambda f: f.max_wait),
    ("SL", "ratio", lambda f: f.sl),
    ("SL2", "ratio", lambda f: f.sl2),
    ("abandon rate", "ratio", lambda f: f.abandon_rate),
    ("AHT (s)", "seconds", lambda f: f.aht),
    ("talk", "duration", lambda f: f.talk),
    ("hold", "duration", lambda f: f.hold),
    ("wrap-up", "duration", lambda f: f.wrapup),
    ("logged in", "duration", lambda f: f.logged_in),
    ("paused", "duration", lambda f: f.paused),
    ("occupancy", "ratio", lambda f: f.occupancy),
)
