"""The control socket server: a Unix stream socket speaking `pbxcore.control.protocol`.

Theory of operation.  `ControlServer` is a command registry (`register(name, handler)`, a
handler is an async callable taking the request's args and returning a JSON-able result or
raising `CommandError`) and, once `start()`ed, a listener on `[paths] control`.  The switch
registers its own commands (pbxcore.control.handlers); a service with commands of its own (the
ACD's queues, agents, agent) registers them the same way, before or after the start.

Who may connect is decided by the file system: the socket is created with mode 0600 (the umask
is narrowed around bind(), then the mode set again with chmod), so only the switch's own user —
and root — can talk to it.  A socket file already there is probed: a switch that answers means
"already running" and the start is refused; a dead one (a crash left it) is removed.  At stop
the file is removed if it is still ours (same inode).

Each connection is served by its own task, so several clients work at once; requests on one
connection are answered in order.  A request line is bounded (MAX_REQUEST), a connection idle
for IDLE seconds is closed, and a handler that runs longer than `timeout` is answered `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pbxcore.control.protocol import (
    BAD_REQUEST,
    INTERNAL,
    MAX_REQUEST,
    NOT_CONFIGURED,
    TIMEOUT,
    TOO_LARGE,
    UNKNOWN_COMMAND,
    CommandError,
    ControlRequest,
    ProtocolError,
    decode_request,
    encode_error,
    encode_result,
)

log = logging.getLogger("pbxcore.control")

Handler = Callable[[Mapping[str, Any]], Awaitable[Any]]

IDLE = 30.0  # seconds a connection may sit without sending a complete request
MAX_PATH = 107  # sun_path is 108 bytes on Linux, NUL included


class ControlError(Exception):
    """The control socket cannot be served (path too long, already in use, not a socket)."""


class ControlServer:
    """Command registry plus the Unix-socket listener that serves it."""

    def __init__(self, path: Path, *, mode: int = 0o600, timeout: float = 30.0) -> None:
        self.path = path
        self.mode = mode
        self.timeout = timeout
        self._handlers: dict[str, Handler] = {}
        self._reserved: dict[str, str] = {}  # known names nobody serves yet → why not
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._inode: int | None = None

    # -- the registry ---------------------------------------------------------------------

    def register(self, name: str, handler: Handler, *, replace: bool = False) -> None:
        """Serve `name` with `handler`; a second registration of a name is a bug unless
        `replace` (a service restarted under a running switch)."""
        if name in self._handlers and not replace:
            raise ValueError(f"control command {name!r} is already registered")
        self._handlers[name] = handler

    def unregister(self, name: str) -> None:
        self._handlers.pop(name, None)

    def reserve(self, name: str, message: str) -> None:
        """A command the CLI knows but this switch does not serve (yet): asking for it is
        answered `not_configured` with `message` ("no queues configured") instead of
        `unknown_command`, until a service registers it."""
        self._reserved[name] = message

    def handles(self, name: str) -> bool:
        return name in self._handlers

    @property
    def commands(self) -> list[str]:
        return sorted(self._handlers)

    async def call(self, name: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run a command in-process (what a request does, minus the socket)."""
        handler = self._handlers.get(name)
        if handler is None and name in self._reserved:
            raise CommandError(NOT_CONFIGURED, self._reserved[name])
        if handler is None:
            raise CommandError(UNKNOWN_COMMAND, f"unknown command {name!r} "
                               f"(known: {', '.join(self.commands)})")
        return await handler(args or {})

    async def dispatch(self, request: ControlRequest) -> bytes:
        """The response line for one request; never raises for a handler's fault."""
        try:
            async with asyncio.timeout(self.timeout):
                return encode_result(await self.call(request.cmd, request.args))
        except CommandError as exc:
            return encode_error(exc.code, exc.message, exc.details)
        except TimeoutError:
            return encode_error(TIMEOUT, f"{request.cmd} did not finish in {self.timeout:g} s")
        except Exception as exc:
            log.exception("control command %r failed", request.cmd)
            return encode_error(INTERNAL, f"{request.cmd} failed: {type(exc).__name__}: {exc}")

    # -- the socket -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on `path` (its directory is created); ControlError when another switch
        answers there or the path cannot be a socket."""
        path = self.path
        await self.claim()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # bind() creates the file with the umask applied: narrow it for that one call so
            # the socket is never reachable by others, then set the mode for sure (chmod).
            # bind is synchronous: no other coroutine runs while the umask is changed.
            old = os.umask(0o177)
            try:
                sock.bind(str(path))
            finally:
                os.umask(old)
            os.chmod(path, self.mode)
            sock.setblocking(False)
            self._server = await asyncio.start_unix_server(self._client, sock=sock,
                                                           limit=MAX_REQUEST)
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot serve the control socket at {path}: {exc}") from None
        self._inode = path.stat().st_ino
        log.info("control socket at %s (mode %o)", path, self.mode)

    async def claim(self) -> None:
        """Make the path free for our socket: ControlError when a live switch answers there
        (or it is not a socket at all); a stale socket file is removed."""
        path = self.path
        if len(os.fsencode(path)) > MAX_PATH:
            raise ControlError(f"control socket path {path} is longer than {MAX_PATH} bytes "
                               "(a Unix socket limit): set a shorter [paths] control")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"{path} exists and is not a socket: refusing to replace it")
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 2)
        except (OSError, TimeoutError):
            log.info("removing the stale control socket %s", path)
            path.unlink(missing_ok=True)
            return
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        raise ControlError(f"a switch is already running with the control socket {path}")

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(set(self._clients), timeout=2)
        with contextlib.suppress(OSError):
            # Only our own file: a second switch started after a crash may own the path now.
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        self._server = None
        log.info("control socket %s closed", self.path)

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE):
                    line = await reader.readuntil(b"\n")
            except TimeoutError:
                return
            except asyncio.IncompleteReadError:
                return  # end of input (a last line without newline is ignored)
            except asyncio.LimitOverrunError:
                writer.write(encode_error(TOO_LARGE, f"request longer than {MAX_REQUEST} bytes"))
                await writer.drain()
                return  # the rest of the line is unread: this connection cannot go on
            try:
                request = decode_request(line)
            except ProtocolError as exc:
                writer.write(encode_error(BAD_REQUEST, str(exc)))
            else:
                writer.write(await self.dispatch(request))
            await writer.drain()
