"""Agents' time per state, from agent events (each row: the agent entered `state` at `time`).

Pure.  An agent is in the state of its last row until its next row; the state it was in when
the period began is the last row before it (the loader reads it).  Time is clipped to the
period.  Logged-in time is every state but ``logged_out``; pause time is ``paused``, by reason.
A wrap-up interval belongs to the last call the agent was connected to before it began.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from pbxcore.report.model import Period, Visit


class AgentEventRow(Protocol):
    @property
    def time(self) -> datetime: ...
    @property
    def agent(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str: ...


@dataclass
class AgentTime:
    """Seconds an agent spent in each state within the period."""

    agent: str
    states: dict[str, float] = field(default_factory=dict)
    pauses: dict[str, float] = field(default_factory=dict)  # reason ("" = none given) -> s
    wrapups: list[tuple[datetime, datetime]] = field(default_factory=list)  # unclipped

    @property
    def logged_in(self) -> float:
        return sum(s for state, s in self.states.items() if state != "logged_out")

    @property
    def paused(self) -> float:
        return self.states.get("paused", 0.0)

    @property
    def busy(self) -> float:
        """Talking plus wrap-up: the numerator of occupancy."""
        return self.states.get("talking", 0.0) + self.states.get("wrapup", 0.0)

    @property
    def occupancy(self) -> float | None:
        """busy / (logged in - paused); None when the agent was never available."""
        staffed = self.logged_in - self.paused
        return self.busy / staffed if staffed > 0 else None


def agent_times(events: Iterable[AgentEventRow], before: Iterable[AgentEventRow],
                period: Period) -> dict[str, AgentTime]:
    """Per agent, from ``before`` (each agent's last row before the period, any order) and
    ``events`` (the period's rows, oldest first)."""
    rows: dict[str, list[AgentEventRow]] = {}
    for e in before:
        rows.setdefault(e.agent, []).insert(0, e)
    for e in events:
        rows.setdefault(e.agent, []).append(e)
    out: dict[str, AgentTime] = {}
    for agent, seq in sorted(rows.items()):
        t = out[agent] = AgentTime(agent)
        for i, e in enumerate(seq):
            end = seq[i + 1].time if i + 1 < len(seq) else period.until
            if e.state == "wrapup":
                t.wrapups.append((e.time, end))
            secs = period.clip(e.time, end)
            if secs <= 0:
                continue
            t.states[e.state] = t.states.get(e.state, 0.0) + secs
            if e.state == "paused":
                t.pauses[e.reason] = t.pauses.get(e.reason, 0.0) + secs
    return out


def with_wrapups(visits: list[Visit], times: Mapping[str, AgentTime]) -> list[Visit]:
    """Each answered visit with the wrap-up its agent did after it (whole intervals: a call's
    wrap-up belongs to it even past the period's end, like its talk time)."""
    connects: dict[str, list[tuple[datetime, int]]] = {}
    for i, v in enumerate(visits):
        if v.answered and v.agent is not None and v.connected is not None:
            connects.setdefault(v.agent, []).append((v.connected, i))
    extra = [0.0] * len(visits)
    for agent, cs in connects.items():
        cs.sort()
        starts = [c[0] for c in cs]
        for start, end in times[agent].wrapups if agent in times else ():
            k = bisect.bisect_right(starts, start) - 1
            if k >= 0:
                extra[cs[k][1]] += max(0.0, (end - start).total_seconds())
    return [replace(v, wrapup=v.wrapup + extra[i]) if extra[i] else v
            for i, v in enumerate(visits)]
