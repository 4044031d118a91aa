"""RTP port allocation: even ports, round robin, skip ports held by others."""

from __future__ import annotations

import socket

import pytest

from pbxcore.media.ports import PortAllocator, PortsExhaustedError


def free_even_range(size: int) -> tuple[int, int]:
    """An even port the OS says is free now, and the range that starts there."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port % 2 == 0 and port + size < 65535:
            return port, port + size
    raise RuntimeError("no even free port found")


def test_even_ports_round_robin() -> None:
    a = PortAllocator(10001, 10010)
    assert a.capacity == 5
    got = [a.allocate() for _ in range(5)]
    assert got == [10002, 10004, 10006, 10008, 10010]
    with pytest.raises(PortsExhaustedError):
        a.allocate()
    a.release(10004)
    a.release(10004)  # harmless
    assert a.allocate() == 10004
    assert a.in_use == 5


def test_released_port_not_reused_at_once() -> None:
    a = PortAllocator(20000, 20010)
    first = a.allocate()
    a.release(first)
    assert a.allocate() != first


@pytest.mark.parametrize(("low", "high"), [(0, 10), (100, 50), (65534, 65536), (11, 11)])
def test_bad_ranges(low: int, high: int) -> None:
    with pytest.raises(ValueError):
        PortAllocator(low, high)


def test_bind_skips_ports_held_elsewhere() -> None:
    low, high = free_even_range(40)
    a = PortAllocator(low, high)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        blocker.bind(("127.0.0.1", low))
        sock = a.bind("127.0.0.1")
        try:
            port = sock.getsockname()[1]
            assert port % 2 == 0 and low < port <= high
            assert a.in_use == 1  # the skipped port is not held
        finally:
            sock.close()
    finally:
        blocker.close()


def test_bind_exhausted() -> None:
    low, _ = free_even_range(2)
    a = PortAllocator(low, low)
    sock = a.bind("127.0.0.1")
    try:
        with pytest.raises(PortsExhaustedError):
            a.bind("127.0.0.1")
    finally:
        sock.close()
