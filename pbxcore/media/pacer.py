"""One clock for every outgoing RTP stream.

A single task wakes on absolute deadlines (start + n * step, so sleep overshoot never
accumulates into drift) and calls `tick()` on registered streams, each of which sends at
most one packet per 20 ms interval. The streams are dealt into `slices` groups and the
clock wakes `slices` times per interval, ticking one group each time: every stream still
gets exactly one tick per interval, always in the same phase (so its spacing stays 20 ms),
but the event loop is held for 1/slices of the work at a time. With 1,000 hold-music
streams one whole tick is ~10 ms of sendto calls (bench/README.md, "Media"): run at once it
delays every SIP message and queue decision that arrives meanwhile by up to that much.

If the loop was late by whole steps it runs the missed steps back to back (bounded by
`max_catchup` intervals) so stream timestamps stay in step with wall time; beyond that it
skips ahead rather than bursting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

INTERVAL = 0.020
"""G.711 packetisation time: 20 ms = 160 samples."""


class PacedStream(Protocol):
    """Anything that sends one packet per tick."""

    def tick(self) -> None:
        """Send this interval's packet; must not block."""


@dataclass(frozen=True)
class PacerStats:
    """What the clock did so far."""

    ticks: int
    """Whole intervals run (every group ticked once)."""
    caught_up: int
    """Intervals' worth of steps run late, back to back, to catch up."""
    skipped: int
    """Intervals' worth of steps dropped because the loop was more than max_catchup
    intervals late."""
    lateness_p50_ms: float
    """Median lateness of a tick against its deadline (recent window)."""
    lateness_p99_ms: float
    """99th percentile lateness (recent window)."""
    tick_cost_p50_ms: float
    """Median time spent ticking one group of streams (recent window): how long the
    event loop is held at a time."""
    tick_cost_p99_ms: float
    """99th percentile time spent ticking one group (recent window)."""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Pacer:
    """The shared 20 ms clock; register streams, start once, stop at shutdown."""

    def __init__(self, interval: float = INTERVAL, max_catchup: int = 5, slices: int = 4) -> None:
        if slices < 1:
            raise ValueError("slices must be at least 1")
        self.interval = interval
        self.max_catchup = max_catchup
        self.slices = slices
        self._step = interval / slices
        self._groups: list[dict[int, PacedStream]] = [{} for _ in range(slices)]
        self._group_of: dict[int, int] = {}
        self._snapshots: list[tuple[PacedStream, ...]] = [() for _ in range(slices)]
        self._task: asyncio.Task[None] | None = None
        self._steps = self._caught_up = self._skipped = 0
        self._lateness: deque[float] = deque(maxlen=3000)
        self._cost: deque[float] = deque(maxlen=3000)

    def register(self, stream: PacedStream) -> None:
        """Tick this stream from its group's next step on (the group with fewest streams)."""
        key = id(stream)
        if key in self._group_of:
            return
        g = min(range(self.slices), key=lambda i: len(self._groups[i]))
        self._groups[g][key] = stream
        self._group_of[key] = g
        self._snapshots[g] = tuple(self._groups[g].values())

    def unregister(self, stream: PacedStream) -> None:
        """Stop ticking this stream; unknown streams are ignored."""
        g = self._group_of.pop(id(stream), None)
        if g is not None:
            del self._groups[g][id(stream)]
            self._snapshots[g] = tuple(self._groups[g].values())

    @property
    def streams(self) -> int:
        """Number of registered streams."""
        return len(self._group_of)

    async def start(self) -> None:
        """Start the clock task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rtp-pacer")

    async def stop(self) -> None:
        """Stop the clock task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def stats(self) -> PacerStats:
        """Counters and recent lateness percentiles."""
        late, cost = list(self._lateness), list(self._cost)
        return PacerStats(
            -(-self._steps // self.slices),  # intervals begun
            self._caught_up // self.slices,
            self._skipped // self.slices,
            _pct(late, 0.5) * 1e3,
            _pct(late, 0.99) * 1e3,
            _pct(cost, 0.5) * 1e3,
            _pct(cost, 0.99) * 1e3,
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        step, slices = self._step, self.slices
        max_behind = self.max_catchup * slices
        deadline = loop.time() + step
        phase = 0
        while True:
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            behind = int((now - deadline) / step)
            if behind > max_behind:
                # Too late to catch up without a burst the far end would drop anyway. Skip
                # whole intervals so each group keeps its phase.
                skip = (behind - max_behind + slices - 1) // slices * slices
                self._skipped += skip
                deadline += skip * step
            elif delay <= 0:
                self._caught_up += 1
            self._lateness.append(now - deadline)
            self._tick_group(phase)
            self._cost.append(loop.time() - now)
            deadline += step
            phase = phase + 1 if phase + 1 < slices else 0

    def _tick_group(self, phase: int) -> None:
        self._steps += 1
        for stream in self._snapshots[phase]:
            try:
                stream.tick()
            except Exception:  # one broken stream must not silence every call
                log.exception("RTP stream tick failed; unregistering it")
                self.unregister(stream)
