"""One queue's waiting line: callers by priority (higher first), then arrival (FIFO).

Each priority has its own list of arrival numbers (sorted by construction), so a position is a
sum over the few priorities plus one bisection, removal is one bisection, and the dispatcher can
walk callers in service order without sorting (`Cursor`).  Arrival order of all callers is kept
too (an OrderedDict), for the longest wait.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Caller:
    """A caller waiting in a queue."""

    call_id: str
    queue: str
    priority: int
    seq: int  # global arrival number: the FIFO order within a priority
    joined_at: float
    position: int  # its position when it entered (origposition)
    action_timeout: float | None  # the action's timeout=S
    announce: bool
    timeout_at: float | None = None
    level: int = 1  # overflow level: members with tier <= level may be offered it
    next_level_at: float | None = None
    offer_id: int | None = None  # its live offer
    retry_at: float | None = None  # no offer before this (Asterisk's retry)
    next_announce: float | None = None
    callback: str | None = None  # a virtual caller: the number to call back (no live call)
    attempts: int = 0  # callback attempts so far (the customer dialled and not reached)

    @property
    def ready(self) -> bool:
        """May be offered to an agent now (no live offer, not waiting out a retry)."""
        return self.offer_id is None and self.retry_at is None


class WaitingLine:
    """The callers of one queue."""

    def __init__(self) -> None:
        self.by_call: dict[str, Caller] = {}
        self._by_seq: dict[int, Caller] = {}
        self._groups: dict[int, list[int]] = {}  # priority -> sorted seqs
        self._priorities: list[int] = []  # descending
        self._arrival: OrderedDict[str, Caller] = OrderedDict()

    def __len__(self) -> int:
        return len(self.by_call)

    def __iter__(self) -> Iterator[Caller]:
        """Callers in service order."""
        for p in self._priorities:
            for seq in self._groups[p]:
                yield self._by_seq[seq]

    def position_for(self, priority: int) -> int:
        """The position a new caller of `priority` would take (1 = next)."""
        return 1 + sum(len(self._groups[p]) for p in self._priorities if p >= priority)

    def position(self, caller: Caller) -> int:
        """The caller's position now (1 = next to be served)."""
        ahead = sum(len(self._groups[p]) for p in self._priorities if p > caller.priority)
        return 1 + ahead + bisect.bisect_left(self._groups[caller.priority], caller.seq)

    def add(self, caller: Caller) -> None:
        group = self._groups.get(caller.priority)
        if group is None:
            group = self._groups[caller.priority] = []
            self._priorities = sorted(self._groups, reverse=True)
        bisect.insort(group, caller.seq)
        self.by_call[caller.call_id] = caller
        self._by_seq[caller.seq] = caller
        self._arrival[caller.call_id] = caller

    def remove(self, caller: Caller) -> None:
        group = self._groups[caller.priority]
        del group[bisect.bisect_left(group, caller.seq)]
        if not group:
            del self._groups[caller.priority]
            self._priorities = sorted(self._groups, reverse=True)
        del self.by_call[caller.call_id]
        del self._by_seq[caller.seq]
        del self._arrival[caller.call_id]

    def oldest(self) -> Caller | None:
        """The caller who has waited longest (arrival order, whatever its priority)."""
        return next(iter(self._arrival.values()), None)

    def cursor(self) -> Cursor:
        return Cursor(self)


class Cursor:
    """Walks the ready callers of a line in service order, for one dispatch round.

    `skip_priority()` jumps to the next priority: within a priority, callers behind have waited
    no longer, so their overflow level is no higher, and if this one found no agent they won't.
    The line must not change while a cursor is in use (dispatch only marks offers)."""

    def __init__(self, line: WaitingLine) -> None:
        self._line = line
        self._prios = list(line._priorities)
        self._pi = 0
        self._i = 0

    def current(self) -> Caller | None:
        line = self._line
        while self._pi < len(self._prios):
            seqs = line._groups.get(self._prios[self._pi], [])
            while self._i < len(seqs):
                c = line._by_seq[seqs[self._i]]
                if c.ready:
                    return c
                self._i += 1
            self._pi, self._i = self._pi + 1, 0
        return None

    def advance(self) -> None:
        self._i += 1

    def skip_priority(self) -> None:
        self._pi, self._i = self._pi + 1, 0
