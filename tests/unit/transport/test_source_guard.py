"""SourceGuard: [limits] with a stepped clock (the decisions are sip/admission.py's; this is
the 503, the trusted sources, the once-per-window log and the descriptor budget)."""

from __future__ import annotations

import asyncio
import logging
import resource

import pytest

from pbxcore.config import Limits
from pbxcore.transport.source_guard import SourceGuard, fd_budget, raise_nofile_limit

REQUEST = (b"REGISTER sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\n"
           b"From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n"
           b"Content-Length: 0\r\n\r\n")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_503_with_retry_after_then_silence(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    guard = SourceGuard(Limits(requests_per_source=2, window=2.0, trusted=()), clock)
    caplog.set_level(logging.WARNING, "pbxcore.sip")
    got = [guard.message(REQUEST, "192.0.2.9") for _ in range(5)]
    assert [ok for ok, _ in got] == [True, True, False, False, False]
    replies = [reply for _, reply in got if reply is not None]
    assert len(replies) == 1 and replies[0].startswith(b"SIP/2.0 503 Service Unavailable\r\n")
    assert b"Retry-After: 4\r\n" in replies[0] and b"Call-ID: c1\r\n" in replies[0]
    assert guard.stats["rate_refused"] == 3 and guard.stats["rate_limited"] == 1
    assert [r.message for r in caplog.records].count(
        "rate limit: 192.0.2.9 sent more than 2 messages in 2s; refusing it (one 503, then "
        "dropped) until it sends fewer") == 1
    clock.now += 2.5  # next window: still blocked (it flooded), and the last one is summed up
    assert guard.message(REQUEST, "192.0.2.9")[0] is False
    assert "rate limit: refused 3 of 5 messages from 192.0.2.9 in a 2s window" in caplog.text


def test_a_response_is_refused_without_a_503() -> None:
    guard = SourceGuard(Limits(requests_per_source=1, trusted=()), Clock())
    response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n\r\n"
    assert guard.message(response, "192.0.2.9") == (True, None)
    assert guard.message(response, "192.0.2.9") == (False, None)


def test_trusted_and_unlimited() -> None:
    guard = SourceGuard(Limits(requests_per_source=1), Clock())  # loopback trusted by default
    assert all(guard.message(REQUEST, "127.0.0.1")[0] for _ in range(10))
    off = SourceGuard(Limits(requests_per_source=0, trusted=()), Clock())
    assert off.rate is None and all(off.message(REQUEST, "192.0.2.9")[0] for _ in range(10))
    assert "no rate limit" in off.describe()


def test_trunk_hosts_are_trusted_after_resolve() -> None:
    guard = SourceGuard(Limits(requests_per_source=1, trusted=()), Clock(),
                        trusted_hosts=["198.51.100.7", "localhost"])
    asyncio.run(guard.resolve())
    assert "198.51.100.7" in guard.trusted and "127.0.0.1" in guard.trusted
    assert "198.51.100.8" not in guard.trusted


def test_connections_logged_once_per_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    guard = SourceGuard(Limits(tcp_per_source=1, window=2.0, trusted=()), clock)
    caplog.set_level(logging.WARNING, "pbxcore.sip")
    assert guard.connection("192.0.2.9")
    assert not any(guard.connection("192.0.2.9") for _ in range(5))
    assert guard.connection("192.0.2.9", outbound=True)  # ours: no per-source cap
    assert guard.stats["tcp_refused_per_source"] == 5
    assert caplog.text.count("tcp: connection from 192.0.2.9 refused") == 1
    clock.now += 2.0
    assert not guard.connection("192.0.2.9")
    assert caplog.text.count("tcp: connection from 192.0.2.9 refused") == 2
    guard.release("192.0.2.9")
    guard.release("192.0.2.9")
    assert guard.connection("192.0.2.9")


def test_fd_budget_keeps_the_reserve() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert fd_budget(Limits(tcp_total=10**6, fd_reserve=100)) == max(1, soft - 100)
    assert fd_budget(Limits(tcp_total=5)) == 5


def test_raise_nofile_limit_reaches_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        before, now = raise_nofile_limit()
        assert before == min(soft, 256)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now
        assert now == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_start_up_line_names_the_rate_limit_in_force() -> None:
    # The limiter is empty at start (no source seen yet): it is still in force.
    assert "200 messages per source per 2s" in SourceGuard(Limits(), lambda: 0.0).describe()
    assert "no rate limit" in SourceGuard(Limits(requests_per_source=0), lambda: 0.0).describe()
