"""Counters about the switch as a whole, for `pbx top` and the Prometheus endpoint.

Only what cannot be read from live state at the moment it is asked: recent call starts (calls
per second) and script errors (errors in the last minute) as small ring buffers of monotonic
timestamps, and the true counters Prometheus wants (calls ended by route and disposition,
script runs by transport with their latency, script errors, RTP packets of ended calls).
Each update is an append or an integer increment: cheap enough for the call path.  Everything
else (live calls, queues, agents, registrations) is read from its owner when asked.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW = 60.0  # seconds: "in the last minute"
RECENT = 4096  # ring buffer size: a minute of 68 calls/s, plenty for one node
# Script run latency buckets in seconds: a process spawn is ~5-20 ms, a webhook ~50-500 ms,
# and the route timeout (default 10 s) caps them.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Latency:
    """A cumulative histogram (Prometheus semantics: counts[i] = runs <= LATENCY_BUCKETS[i])."""

    counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1


@dataclass
class SwitchStats:
    """Owned by CallDeps; updated by the switch and the engine, read by control and metrics."""

    call_starts: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))
    error_times: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))
    calls_total: dict[tuple[str, str], int] = field(default_factory=dict)  # (route, disposition)
    script_runs: dict[str, Latency] = field(default_factory=dict)  # by transport
    script_errors: int = 0
    rtp_sent_ended: int = 0  # packets sent by calls that have ended (live ones add theirs)

    def call_started(self, now: float) -> None:
        self.call_starts.append(now)

    def call_ended(self, route: str, disposition: str, rtp_sent: int) -> None:
        key = (route, disposition)
        self.calls_total[key] = self.calls_total.get(key, 0) + 1
        self.rtp_sent_ended += rtp_sent

    def script_ran(self, transport: str, seconds: float, ok: bool, now: float) -> None:
        self.script_runs.setdefault(transport, Latency()).observe(seconds)
        if not ok:
            self.script_errors += 1
            self.error_times.append(now)

    def calls_per_second(self, now: float, window: float = 10.0) -> float:
        """Call starts per second over the last `window` seconds."""
        return _since(self.call_starts, now - window) / window

    def errors_last_minute(self, now: float) -> int:
        return _since(self.error_times, now - WINDOW)


def _since(times: deque[float], start: float) -> int:
    # Newest at the right: count back until the first older one.
    n = 0
    for t in reversed(times):
        if t < start:
            break
        n += 1
    return n
