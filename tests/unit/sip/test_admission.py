"""The pure admission rules (sip/admission.py): pike-style windows stepped by hand, the bounded
source table, connection caps and trusted networks."""

from __future__ import annotations

import pytest

from pbxcore.sip.admission import (
    ConnectionCaps,
    RateLimiter,
    TrustedSources,
    Verdict,
    WindowReport,
    is_ip_network,
)

A, B = "192.0.2.1", "192.0.2.2"


def verdicts(rl: RateLimiter, source: str, times: list[float]) -> list[Verdict]:
    return [rl.check(source, t)[0] for t in times]


def test_limit_per_window_then_one_limited_then_dropped() -> None:
    rl = RateLimiter(limit=3, window=2.0)
    got = verdicts(rl, A, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert got == [Verdict.ALLOWED] * 3 + [Verdict.LIMITED, Verdict.DROPPED, Verdict.DROPPED]
    assert rl.refused_total == 3


def test_sources_are_counted_apart() -> None:
    rl = RateLimiter(limit=2, window=1.0)
    verdicts(rl, A, [0.0, 0.1, 0.2])
    assert verdicts(rl, B, [0.3, 0.4]) == [Verdict.ALLOWED, Verdict.ALLOWED]


def test_within_the_limit_every_window_is_allowed() -> None:
    rl = RateLimiter(limit=2, window=1.0)
    times = [w + off for w in range(10) for off in (0.0, 0.5)]
    assert set(verdicts(rl, A, times)) == {Verdict.ALLOWED}


def test_a_flood_stays_blocked_for_the_next_window_and_is_reported() -> None:
    rl = RateLimiter(limit=3, window=1.0)
    verdicts(rl, A, [0.0 + i / 10 for i in range(10)])  # 10 in window 0: over
    verdict, report = rl.check(A, 1.05)  # window 1: blocked although the count restarts
    assert verdict is Verdict.LIMITED
    assert report == WindowReport(A, received=10, refused=7)
    assert verdicts(rl, A, [1.1, 1.2]) == [Verdict.DROPPED, Verdict.DROPPED]


def test_a_source_that_calms_down_is_served_again() -> None:
    rl = RateLimiter(limit=3, window=1.0)
    verdicts(rl, A, [i / 10 for i in range(10)])  # flood in window 0
    verdicts(rl, A, [1.5])  # window 1: blocked, but only one message: under the limit
    assert verdicts(rl, A, [2.1, 2.2]) == [Verdict.ALLOWED, Verdict.ALLOWED]


def test_a_source_silent_for_a_window_starts_afresh() -> None:
    rl = RateLimiter(limit=3, window=1.0)
    verdicts(rl, A, [i / 10 for i in range(10)])
    assert rl.check(A, 5.0)[0] is Verdict.ALLOWED


def test_the_table_is_bounded_least_recently_seen_evicted() -> None:
    rl = RateLimiter(limit=1, window=10.0, max_sources=3)
    for i in range(3):
        rl.check(f"10.0.0.{i}", 0.0)
    assert rl.check("10.0.0.0", 0.1)[0] is Verdict.LIMITED  # refreshes .0: .1 is the oldest
    rl.check("10.0.0.9", 0.2)
    assert len(rl) == 3 and rl.evicted_total == 1
    assert rl.check("10.0.0.0", 0.3)[0] is Verdict.DROPPED  # still counted: not evicted
    assert rl.check("10.0.0.1", 0.4)[0] is Verdict.ALLOWED  # evicted: forgotten


def test_expire_forgets_idle_sources_with_a_report_for_refused_ones() -> None:
    rl = RateLimiter(limit=1, window=1.0)
    verdicts(rl, A, [0.0, 0.1, 0.2])
    verdicts(rl, B, [1.5])
    assert rl.expire(1.9) == []
    assert rl.expire(2.5) == [WindowReport(A, received=3, refused=2)]
    assert len(rl) == 1


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(limit=0, window=1.0)
    with pytest.raises(ValueError):
        RateLimiter(limit=1, window=0.0)


def test_connection_caps_per_source_and_total() -> None:
    caps = ConnectionCaps(per_source=2, total=3)
    assert caps.admit(A) is None and caps.admit(A) is None
    assert caps.admit(A) == "per source"
    assert caps.admit(B) is None
    assert caps.admit(B) == "total"
    caps.release(A)
    assert caps.open_from(A) == 1 and caps.count == 2
    assert caps.admit(B) is None


def test_trusted_sources_skip_the_per_source_cap_not_the_total() -> None:
    caps = ConnectionCaps(per_source=1, total=2)
    assert caps.admit(A, trusted=True) is None
    assert caps.admit(A, trusted=True) is None
    assert caps.admit(A, trusted=True) == "total"


def test_release_of_an_unknown_source_changes_nothing() -> None:
    caps = ConnectionCaps(per_source=1, total=1)
    caps.release(A)
    assert caps.count == 0 and caps.admit(A) is None


def test_trusted_networks_and_addresses() -> None:
    trusted = TrustedSources(["127.0.0.0/8", "::1", "203.0.113.7", "2001:db8::/32"])
    assert "127.0.0.1" in trusted and "127.9.9.9" in trusted
    assert "::1" in trusted and "2001:db8::5" in trusted and "203.0.113.7" in trusted
    assert "::ffff:127.0.0.1" in trusted  # IPv4-mapped on a dual-stack socket
    assert "203.0.113.8" not in trusted and "not-an-ip" not in trusted and 5 not in trusted
    with pytest.raises(ValueError):
        trusted.add("proxy.example.com")


def test_is_ip_network() -> None:
    assert is_ip_network("10.0.0.0/8") and is_ip_network("192.0.2.1") and is_ip_network("::1")
    assert not is_ip_network("sip.example.com") and not is_ip_network("10.0.0.0/33")
