"""Who may use the switch how much: per-source message rate (Kamailio pike's model), TCP
connection caps, and the trusted sources exempt from both.  Pure: state in, `now` in, decisions
out; `transport/sip_endpoint.py` applies them to sockets.

Rate (issue 9 item 6: one source's 4,000 REGISTER/s flood starved every other client): each
source address gets a fixed window of `window` seconds and may send `limit` SIP messages in it.
Past the limit the rest of the window is refused, and — as pike does — a source that went over
the limit in one window stays blocked for the whole next one while it keeps sending more than
`limit`, so a steady flood is cut off entirely instead of getting `limit` through every window.
The first refusal of a window is reported (`Verdict.LIMITED`: answer it with 503 and log once),
the others are silent drops (`Verdict.DROPPED`): answering a flood would amplify it.

The table holds at most `max_sources` addresses (a spoofed-source UDP flood must not grow memory
without bound); the least recently seen address is evicted first, which at worst forgets a
source's count.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Verdict(Enum):
    ALLOWED = "allowed"
    LIMITED = "limited"  # first refusal in this window: answer 503 once, log once
    DROPPED = "dropped"  # further refusals: drop silently


@dataclass
class _Window:
    start: float  # when the current window began
    count: int  # messages that arrived in it (refused ones too: pike counts the flood)
    blocked: bool  # the previous window was over the limit: refuse this whole window
    refused: int  # messages refused in the current window
    reported: bool  # LIMITED already returned in the current window


@dataclass(frozen=True)
class WindowReport:
    """What a source did in the window that just ended, when it was refused anything."""

    source: str
    received: int
    refused: int


class RateLimiter:
    """Per-source fixed windows: `limit` messages per `window` seconds, then refusals."""

    def __init__(self, limit: int, window: float, max_sources: int = 65536) -> None:
        if limit < 1 or window <= 0 or max_sources < 1:
            raise ValueError("limit >= 1, window > 0 and max_sources >= 1 are required")
        self.limit, self.window, self.max_sources = limit, window, max_sources
        self._table: OrderedDict[str, _Window] = OrderedDict()
        self.refused_total = 0
        self.evicted_total = 0

    def __len__(self) -> int:
        return len(self._table)

    def check(self, source: str, now: float) -> tuple[Verdict, WindowReport | None]:
        """Count one message from `source` at `now`.  The report, when not None, sums up the
        source's previous window (it was refused messages there), for a once-per-window log."""
        entry = self._table.get(source)
        report = None
        if entry is None:
            entry = _Window(now, 0, False, 0, False)
            self._table[source] = entry
            if len(self._table) > self.max_sources:
                self._table.popitem(last=False)
                self.evicted_total += 1
        else:
            self._table.move_to_end(source)
            elapsed = now - entry.start
            if elapsed >= self.window:
                if entry.refused:
                    report = WindowReport(source, entry.count, entry.refused)
                # Only the window right after an over-limit one stays blocked; a source that
                # was silent for a whole window or more starts afresh.
                entry.blocked = entry.count > self.limit and elapsed < 2 * self.window
                entry.start = now if elapsed >= 2 * self.window else entry.start + self.window
                entry.count = entry.refused = 0
                entry.reported = False
        entry.count += 1
        if not entry.blocked and entry.count <= self.limit:
            return Verdict.ALLOWED, report
        entry.refused += 1
        self.refused_total += 1
        if entry.reported:
            return Verdict.DROPPED, report
        entry.reported = True
        return Verdict.LIMITED, report

    def expire(self, now: float) -> list[WindowReport]:
        """Forget sources idle for two windows; reports for those refused in their last one."""
        reports: list[WindowReport] = []
        while self._table:
            source, entry = next(iter(self._table.items()))
            if now - entry.start < 2 * self.window:
                break  # the table is in last-seen order: the rest are younger
            del self._table[source]
            if entry.refused:
                reports.append(WindowReport(source, entry.count, entry.refused))
        return reports


class ConnectionCaps:
    """Open TCP connections counted per source address and in total."""

    def __init__(self, per_source: int, total: int) -> None:
        self.per_source, self.total = per_source, total
        self._open: dict[str, int] = {}
        self.count = 0

    def admit(self, source: str, *, trusted: bool = False) -> str | None:
        """Take a slot for a new connection from `source`, or say why not ("total" or
        "per source").  Trusted sources (a front proxy, a trunk) skip the per-source cap only:
        the total protects the process's file descriptors."""
        if self.count >= self.total:
            return "total"
        if not trusted and self._open.get(source, 0) >= self.per_source:
            return "per source"
        self._open[source] = self._open.get(source, 0) + 1
        self.count += 1
        return None

    def release(self, source: str) -> None:
        n = self._open.get(source, 0)
        if n <= 0:
            return
        self.count -= 1
        if n == 1:
            del self._open[source]
        else:
            self._open[source] = n - 1

    def open_from(self, source: str) -> int:
        return self._open.get(source, 0)


class TrustedSources:
    """Addresses and networks exempt from the rate limit and the per-source connection cap."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: list[Network] = []
        for entry in entries:
            self.add(entry)

    def add(self, entry: str) -> None:
        """An IP address or CIDR network; raises ValueError for anything else."""
        self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 on a dual-stack socket
        return any(address in net for net in self.networks)


def is_ip_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return False
    return True
