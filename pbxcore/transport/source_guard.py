"""`[limits]` applied to what arrives: the per-source rate, the TCP connection caps, the trusted
sources, the log lines and counters, and the process's file-descriptor budget.

The decisions are the pure `sip/admission.py`; this module adds the clock, DNS for the trunks'
host names, logging at most once per source per window, and RLIMIT_NOFILE.  `SipEndpoint` asks
it before parsing anything (issue 9 item 6: what a flood costs is the parse and what follows).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from collections.abc import Callable, Iterable

from pbxcore.config import Limits
from pbxcore.sip.admission import (
    ConnectionCaps,
    RateLimiter,
    TrustedSources,
    Verdict,
    WindowReport,
    is_ip_network,
)
from pbxcore.sip.stateless import error_response

log = logging.getLogger("pbxcore.sip")

_LOGGED_MAX = 4096  # refusal-log memory; a spoofed-source storm only makes it log more


class SourceGuard:
    """Rate limit and connection caps for one endpoint; `stats` counts every limit hit."""

    def __init__(self, limits: Limits, clock: Callable[[], float],
                 trusted_hosts: Iterable[str] = ()) -> None:
        self.limits, self.clock = limits, clock
        self.trusted = TrustedSources(limits.trusted)
        self._trusted_hosts = tuple(trusted_hosts)  # trunk hosts: names resolved by resolve()
        self.rate = (RateLimiter(limits.requests_per_source, limits.window)
                     if limits.requests_per_source else None)
        self.caps = ConnectionCaps(limits.tcp_per_source, fd_budget(limits))
        self.stats: Counter[str] = Counter()
        self._last_expire = -1e9
        self._logged: dict[tuple[str, str], float] = {}

    async def resolve(self) -> None:
        """Trust the trunks' hosts (names resolved once, at start) and size the TCP total to
        the descriptor budget as it is now (after `raise_nofile_limit`)."""
        self.caps.total = fd_budget(self.limits)
        loop = asyncio.get_running_loop()
        for host in self._trusted_hosts:
            if is_ip_network(host):
                self.trusted.add(host)
                continue
            try:
                infos = await asyncio.wait_for(loop.getaddrinfo(host, None), 5.0)
            except (OSError, TimeoutError) as exc:
                log.warning("limits: cannot resolve trunk host %s to trust it: %s", host, exc)
                continue
            for address in {str(info[4][0]) for info in infos}:
                self.trusted.add(address)

    def describe(self) -> str:
        rate = (f"{self.limits.requests_per_source} messages per source per "
                f"{self.limits.window:g}s" if self.rate is not None else "no rate limit")
        trusted = ", ".join(str(n) for n in self.trusted.networks) or "none"
        return (f"{self.limits.tcp_per_source} TCP connections per source, {self.caps.total} "
                f"in all, {self.limits.tcp_idle:g}s to send a complete message; {rate}; "
                f"trusted: {trusted}")

    # -- messages ---------------------------------------------------------------------------

    def message(self, data: bytes, host: str) -> tuple[bool, bytes | None]:
        """(serve it?, a 503 to send instead).  Counted before parsing."""
        if self.rate is None:
            return True, None
        now = self.clock()
        if now - self._last_expire >= self.rate.window:
            self._last_expire = now
            for old in self.rate.expire(now):
                self._log_window(old)
        if host in self.trusted:
            return True, None
        verdict, report = self.rate.check(host, now)
        if report is not None:
            self._log_window(report)
        if verdict is Verdict.ALLOWED:
            return True, None
        self.stats["rate_refused"] += 1
        if verdict is Verdict.DROPPED:
            return False, None
        self.stats["rate_limited"] += 1
        log.warning("rate limit: %s sent more than %d messages in %gs; refusing it (one 503, "
                    "then dropped) until it sends fewer", host, self.rate.limit, self.rate.window)
        reply = error_response(data, 503, "Service Unavailable")
        if reply is not None:  # RFC 3261 §21.5.4: a well-behaved client waits Retry-After
            retry = f"Retry-After: {max(1, round(2 * self.rate.window))}\r\n".encode()
            reply = reply.replace(b"Content-Length: 0\r\n", retry + b"Content-Length: 0\r\n")
        return False, reply

    def _log_window(self, report: WindowReport) -> None:
        assert self.rate is not None
        log.warning("rate limit: refused %d of %d messages from %s in a %gs window",
                    report.refused, report.received, report.source, self.rate.window)

    # -- connections ------------------------------------------------------------------------

    def connection(self, host: str, *, outbound: bool = False) -> bool:
        """Take a connection slot for `host`; False (counted, logged once per window) if the
        cap is reached.  Our own outbound connections skip the per-source cap."""
        why = self.caps.admit(host, trusted=outbound or host in self.trusted)
        if why is None:
            return True
        key = f"tcp_refused_{why.replace(' ', '_')}"
        self.stats[key] += 1
        now = self.clock()
        if now - self._logged.get((host, why), -1e9) >= self.limits.window:
            if len(self._logged) > _LOGGED_MAX:
                self._logged.clear()
            self._logged[(host, why)] = now
            limit = (f"tcp_per_source {self.caps.per_source}" if why == "per source"
                     else f"tcp_total {self.caps.total}")
            log.warning("tcp: connection %s %s refused: %d open from it, %d in all (%s; %d "
                        "refused so far)", "to" if outbound else "from", host,
                        self.caps.open_from(host), self.caps.count, limit, self.stats[key])
        return False

    def release(self, host: str) -> None:
        self.caps.release(host)


def fd_budget(limits: Limits) -> int:
    """tcp_total, but never more than RLIMIT_NOFILE minus the descriptors kept in reserve
    (scripts' pipes, RTP sockets, the store): connections cannot starve the calls."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.tcp_total
    return max(1, min(limits.tcp_total, soft - limits.fd_reserve))


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (what an unprivileged process may do);
    returns (soft before, soft now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20  # "unlimited" is refused
    if soft != resource.RLIM_INFINITY and soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, target
