"""RTP port allocation from the configured range.

RTP uses even ports, leaving port+1 for RTCP (RFC 3550 §11). Ports are handed out
round-robin so a port just released is not reused at once (late packets of the old
call would land in the new one). Ports another program holds are skipped at bind time.
"""

from __future__ import annotations

import socket


class PortsExhaustedError(RuntimeError):
    """Every even port in the range is in use or cannot be bound."""


class PortAllocator:
    """Even UDP ports in [low, high]."""

    def __init__(self, low: int, high: int) -> None:
        first = low + (low % 2)
        if not 0 < first <= high <= 65535:
            raise ValueError(f"bad RTP port range {low}-{high}")
        self._ports = list(range(first, high + 1, 2))
        self._next = 0
        self._used: set[int] = set()

    @property
    def in_use(self) -> int:
        """How many ports are allocated."""
        return len(self._used)

    @property
    def capacity(self) -> int:
        """How many even ports the range holds."""
        return len(self._ports)

    def allocate(self) -> int:
        """The next free even port (not checked against other programs: see bind)."""
        for _ in range(len(self._ports)):
            port = self._ports[self._next]
            self._next = (self._next + 1) % len(self._ports)
            if port not in self._used:
                self._used.add(port)
                return port
        raise PortsExhaustedError(f"all {len(self._ports)} RTP ports are in use")

    def release(self, port: int) -> None:
        """Give a port back; releasing a port twice is harmless."""
        self._used.discard(port)

    def bind(self, host: str) -> socket.socket:
        """A non-blocking UDP socket bound to host and an allocated port.

        Ports that fail to bind (held by another program) are skipped and stay marked
        used until the range wraps around, so we do not retry them on every call.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        skipped: list[int] = []
        try:
            for _ in range(len(self._ports)):
                port = self.allocate()
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    skipped.append(port)
                    continue
                sock.setblocking(False)
                return sock
            raise PortsExhaustedError(f"no bindable RTP port in {len(self._ports)} on {host}")
        finally:
            for port in skipped:
                self.release(port)
