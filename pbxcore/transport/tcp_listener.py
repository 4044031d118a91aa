"""A TCP listening socket with our own accept loop, so `[limits]` decide before a connection
costs anything, and running out of descriptors cannot make the loop spin.

`asyncio.start_server` accepts whatever arrives and, on EMFILE, logs "socket.accept() out of
system resource" with a traceback on every readiness event (issue 9 item 6: 1.8 GB of log in
five minutes).  Here each accepted socket is offered to `SourceGuard.connection` first and
closed at once if over a cap; EMFILE/ENFILE (the process's other descriptors, since the caps
keep `fd_reserve` free) removes the listener from the loop for ACCEPT_PAUSE seconds with one
log line a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

from pbxcore.transport.source_guard import SourceGuard

log = logging.getLogger("pbxcore.sip")

ACCEPT_BATCH = 64  # connections accepted per readiness event: one listener cannot hog the loop
ACCEPT_PAUSE = 1.0  # seconds without accepting after EMFILE/ENFILE
PAUSE_LOG_EVERY = 60.0  # seconds between two "accept failed" log lines
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class TcpListener:
    """One listening socket; admitted connections go to `on_connection(sock, host)`."""

    def __init__(self, guard: SourceGuard, on_connection: Callable[[socket.socket, str], None],
                 clock: Callable[[], float]) -> None:
        self.guard, self.on_connection, self.clock = guard, on_connection, clock
        self.sock: socket.socket | None = None
        self._logged = -1e9

    async def open(self, host: str, port: int) -> tuple[str, int]:
        """Bind and listen; raises OSError (the socket closed again) when it cannot."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        loop.add_reader(sock.fileno(), self._ready)
        bound_host, bound_port = sock.getsockname()[:2]
        return bound_host, bound_port

    def _ready(self) -> None:
        assert self.sock is not None
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._pause(exc)
                else:
                    log.warning("tcp accept failed: %s", exc)
                return
            host = address[0]
            if not self.guard.connection(host):
                conn.close()  # at once: a refused peer holds no descriptor
                continue
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.on_connection(conn, host)

    def _pause(self, exc: OSError) -> None:
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.sock.fileno())
        stats = self.guard.stats
        stats["accept_paused"] += 1
        now = self.clock()
        if now - self._logged >= PAUSE_LOG_EVERY:
            self._logged = now
            log.error("tcp accept failed: %s (%d connections open, %d pauses so far); not "
                      "accepting for %gs", exc.strerror, self.guard.caps.count,
                      stats["accept_paused"], ACCEPT_PAUSE)
        loop.call_later(ACCEPT_PAUSE, self._resume)

    def _resume(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().add_reader(self.sock.fileno(), self._ready)

    def close(self) -> None:
        if self.sock is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        self.sock = None
