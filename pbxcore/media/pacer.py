"""One clock for every outgoing RTP stream.

A single task wakes every 20 ms on absolute deadlines (start + n * interval, so sleep
overshoot never accumulates into drift) and calls `tick()` on each registered stream,
which sends at most one packet. If the loop was late by whole intervals it runs the
missed ticks back to back (bounded by `max_catchup`) so stream timestamps stay in step
with wall time; beyond that it skips ahead rather than bursting.
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
    """Ticks run."""
    caught_up: int
    """Ticks run late, back to back, to catch up."""
    skipped: int
    """Ticks dropped because the loop was more than max_catchup intervals late."""
    lateness_p50_ms: float
    """Median lateness of a tick against its deadline (recent window)."""
    lateness_p99_ms: float
    """99th percentile lateness (recent window)."""
    tick_cost_p50_ms: float
    """Median time spent ticking all streams once (recent window)."""
    tick_cost_p99_ms: float
    """99th percentile time spent ticking all streams once (recent window)."""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Pacer:
    """The shared 20 ms clock; register streams, start once, stop at shutdown."""

    def __init__(self, interval: float = INTERVAL, max_catchup: int = 5) -> None:
        self.interval = interval
        self.max_catchup = max_catchup
        self._streams: dict[int, PacedStream] = {}
        self._snapshot: tuple[PacedStream, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._ticks = self._caught_up = self._skipped = 0
        self._lateness: deque[float] = deque(maxlen=3000)
        self._cost: deque[float] = deque(maxlen=3000)

    def register(self, stream: PacedStream) -> None:
        """Tick this stream from the next interval on."""
        self._streams[id(stream)] = stream
        self._snapshot = tuple(self._streams.values())

    def unregister(self, stream: PacedStream) -> None:
        """Stop ticking this stream; unknown streams are ignored."""
        if self._streams.pop(id(stream), None) is not None:
            self._snapshot = tuple(self._streams.values())

    @property
    def streams(self) -> int:
        """Number of registered streams."""
        return len(self._streams)

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
            self._ticks,
            self._caught_up,
            self._skipped,
            _pct(late, 0.5) * 1e3,
            _pct(late, 0.99) * 1e3,
            _pct(cost, 0.5) * 1e3,
            _pct(cost, 0.99) * 1e3,
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.interval
        while True:
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            behind = int((now - deadline) / self.interval)
            if behind > self.max_catchup:
                # Too late to catch up without a burst the far end would drop anyway.
                self._skipped += behind - self.max_catchup
                deadline += (behind - self.max_catchup) * self.interval
            elif delay <= 0:
                self._caught_up += 1
            self._lateness.append(now - deadline)
            self._tick_all()
            self._cost.append(loop.time() - now)
            deadline += self.interval

    def _tick_all(self) -> None:
        self._ticks += 1
        for stream in self._snapshot:
            try:
                stream.tick()
            except Exception:  # one broken stream must not silence every call
                log.exception("RTP stream tick failed; unregistering it")
                self.unregister(stream)
