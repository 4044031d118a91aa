"""The model's records that are not agents or callers: queues, offers, connected calls, timers."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pbxcore.acd.model.alerts import AlertState
from pbxcore.acd.model.estimate import TalkTime
from pbxcore.acd.model.queue import WaitingLine
from pbxcore.acd.spec import QueueSpec

TimerKind = Literal["timeout", "retry", "ring", "wrapup", "overflow", "announce", "alert"]


@dataclass
class QueueState:
    """One queue: its spec, its waiting line and its live figures."""

    spec: QueueSpec
    line: WaitingLine = field(default_factory=WaitingLine)
    index: dict[str, int] = field(default_factory=dict)  # member extension -> config position
    last_offered: str | None = None  # round-robin memory
    talk: TalkTime = field(default_factory=TalkTime)
    alerts: AlertState = field(default_factory=AlertState)
    alert_at: float | None = None  # when the oldest caller reaches the longest_wait threshold
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    timed_out: int = 0

    def __post_init__(self) -> None:
        self.set_spec(self.spec)

    def set_spec(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.index = {m.extension: i for i, m in enumerate(spec.members)}


@dataclass
class OfferState:
    """A live offer: the agents still ringing for one caller."""

    offer_id: int
    call_id: str
    queue: str
    ringing: list[str]  # in the order they were offered
    started: float
    deadline: float


@dataclass
class Connected:
    """A queue call answered by an agent and not yet ended."""

    call_id: str
    queue: str
    agent: str
    hold: float  # seconds the caller waited
    position: int  # origposition
    answered_at: float


class Timers:
    """One heap of (time, kind, key); entries are checked for staleness when they come up, so
    rescheduling never searches the heap."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerKind, str]] = []
        self._seq = 0

    def push(self, at: float, kind: TimerKind, key: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, key))

    def next(self, valid: Callable[[float, TimerKind, str], bool]) -> float | None:
        while self._heap:
            at, _, kind, key = self._heap[0]
            if valid(at, kind, key):
                return at
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float,
                valid: Callable[[float, TimerKind, str], bool]) -> tuple[TimerKind, str] | None:
        while self._heap and self._heap[0][0] <= now:
            at, _, kind, key = heapq.heappop(self._heap)
            if valid(at, kind, key):
                return kind, key
        return None

    def compact(self, live: int, valid: Callable[[float, TimerKind, str], bool]) -> None:
        """Drop stale entries once they outnumber the live records (`live`) eightfold: a
        caller answered long before its timeout leaves one behind until that time."""
        if len(self._heap) > max(4096, 8 * live):
            self._heap = [e for e in self._heap if valid(e[0], e[2], e[3])]
            heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def clear(self) -> None:
        self._heap.clear()
