"""The transport address a SIP message came from or goes to.

Responses are routed back to the `Peer` a request came from (RFC 3261 §18.2.2 with RFC 3581
symmetric response routing), never to a host named in a Via.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    """A remote transport address."""

    transport: str
    """"udp" or "tcp" (lower case)."""
    host: str
    """IP address (or host name) as the socket saw it."""
    port: int
    """Port number as the socket saw it."""

    @property
    def reliable(self) -> bool:
        """True on a reliable transport: no retransmission timers (RFC 3261 §17.1.1.2)."""
        return self.transport.lower() != "udp"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
