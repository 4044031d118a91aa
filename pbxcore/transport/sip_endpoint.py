"""The asyncio adapter around the sans-IO transaction layer: UDP and TCP sockets plus one timer.

Datagrams and TCP frames are parsed and fed to `TransactionLayer` with the current time; whatever
it returns is executed here (`Send`) or handed to the transaction user (`SipHandler`).  One task
owns the timer: it sleeps until the layer's next deadline.  Malformed requests get a stateless
400/505 (RFC 3261 §8.2.2), malformed responses are dropped, and nothing a peer sends can stop the
loop: every input is guarded, the error logged, the socket kept.

One source must not starve the others (issue 9 item 6), so `[limits]` is applied here before
anything is parsed: a per-source message rate (`sip/admission.py`, Kamailio pike's model: the
first refusal of a window gets 503 + Retry-After, the rest are dropped), TCP connections capped
per source and in total, and a TCP connection that has not delivered a complete message within
`tcp_idle` seconds closed.  The total is also capped at RLIMIT_NOFILE minus `fd_reserve`, so
connections can never take the descriptors scripts, RTP sockets and the store need; the TCP
listener is our own accept loop (not `asyncio.start_server`) so that a refused connection is
closed at once and EMFILE pauses accepting instead of asyncio's "socket.accept() out of system
resource" on every turn of the loop.  Trusted sources (loopback,
configured proxies, the trunks' hosts) skip the rate limit and the per-source cap.
`transport/source_guard.py` applies the limits, `transport/tcp_listener.py` is the accept loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from pbxcore.config import Limits
from pbxcore.sip.build import make_response
from pbxcore.sip.framing import PING, PONG, FramingError, StreamFramer
from pbxcore.sip.message import Message, Request, Response, SipSyntaxError, parse_message
from pbxcore.sip.peer import Peer
from pbxcore.sip.stateless import error_response, looks_like_request
from pbxcore.sip.transaction import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    Send,
    TimedOut,
    TransactionLayer,
    TxOutput,
)
from pbxcore.transport.source_guard import SourceGuard
from pbxcore.transport.tcp_listener import TcpListener

log = logging.getLogger("pbxcore.sip")

TCP_IDLE_SECONDS = 300.0  # an idle connection is closed (RFC 5626 clients ping within 120 s)
UDP_MAX = 65535
TCP_WRITE_MAX = 1 << 20  # bytes queued for one TCP connection (past the kernel's buffer)
# The UDP socket's receive buffer (Linux caps it at net.core.rmem_max): every source shares it,
# so while the switch is descheduled a flood would fill the default ~200 KB in tens of
# milliseconds and the kernel would drop everyone's datagrams, not only the flooder's.
UDP_RCVBUF = 4 << 20


class ListenError(Exception):
    """A listen address could not be bound: `spec` and the OS's reason, in lower case."""

    def __init__(self, spec: ListenSpec, reason: str) -> None:
        self.spec, self.reason = spec, reason
        host = f"[{spec.host}]" if ":" in spec.host else spec.host
        super().__init__(f"cannot listen on {spec.transport}:{host}:{spec.port}: {reason}")


@dataclass(frozen=True)
class ListenSpec:
    """One listening socket: transport ("udp" | "tcp"), host and port (0 picks a free one)."""

    transport: str
    host: str
    port: int


class SipHandler(Protocol):
    """The transaction user: what the switch does with requests and responses."""

    def on_request(self, tx: str, request: Request, source: Peer) -> None: ...
    def on_cancel(self, invite_tx: str, request: Request) -> None: ...
    def on_ack(self, tx: str, request: Request) -> None: ...
    def on_response(self, tx: str, response: Response) -> None: ...
    def on_timeout(self, tx: str, method: str) -> None: ...


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.endpoint.datagram(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class SipEndpoint:
    """Sockets for every listen address, the transaction layer and its single timer task."""

    def __init__(
        self,
        handler: SipHandler,
        layer: TransactionLayer | None = None,
        clock: Callable[[], float] = time.monotonic,
        limits: Limits | None = None,
        trusted_hosts: Iterable[str] = (),
    ) -> None:
        self.handler = handler
        self.layer = layer or TransactionLayer()
        self.clock = clock
        self.limits = limits or Limits()
        self.guard = SourceGuard(self.limits, clock, trusted_hosts)
        self.bound: list[ListenSpec] = []
        self._udp: dict[tuple[str, int], asyncio.DatagramTransport] = {}
        self._tcp_listeners: list[TcpListener] = []
        self._tcp_conns: dict[Peer, asyncio.StreamWriter] = {}
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer_task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self, listen: Iterable[ListenSpec]) -> None:
        """Bind every address; raises ListenError (nothing left bound) if one cannot be."""
        loop = asyncio.get_running_loop()
        await self.guard.resolve()
        try:
            for spec in listen:
                try:
                    if spec.transport == "udp":
                        transport, _ = await loop.create_datagram_endpoint(
                            lambda: _Udp(self), local_addr=(spec.host, spec.port)
                        )
                        host, port = transport.get_extra_info("sockname")[:2]
                        self._udp[(host, port)] = transport
                        with contextlib.suppress(OSError):
                            transport.get_extra_info("socket").setsockopt(
                                socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
                    else:
                        listener = TcpListener(self.guard, self._accepted, self.clock)
                        host, port = await listener.open(spec.host, spec.port)
                        self._tcp_listeners.append(listener)
                except OSError as exc:
                    raise ListenError(spec, _os_reason(exc)) from None
                self.bound.append(ListenSpec(spec.transport, host, port))
                log.info("listening on %s:%s:%s", spec.transport, host, port)
        except ListenError:
            await self.close()
            raise
        log.info("limits: %s", self.guard.describe())
        self._timer_task = asyncio.create_task(self._timer_loop(), name="sip-timers")

    def local(self, transport: str) -> ListenSpec:
        """The address we put in Via/Contact for messages sent over `transport`."""
        for spec in self.bound:
            if spec.transport == transport:
                return spec
        return self.bound[0]

    # -- input ------------------------------------------------------------------------------

    def datagram(self, data: bytes, source: Peer) -> None:
        if data in (b"\r\n\r\n", b"\r\n", b"\0\0\0\0"):
            return  # RFC 5626 keep-alive / NAT ping: nothing to answer over UDP
        if self._admit(data, source):
            self._feed(data, source, stream=False)

    def _admit(self, data: bytes, source: Peer) -> bool:
        """The per-source rate limit, before any parsing (that is what a flood costs)."""
        allowed, reply = self.guard.message(data, source.host)
        if reply is not None:
            self._send_bytes(reply, source)
        return allowed

    def _feed(self, data: bytes, source: Peer, *, stream: bool) -> None:
        try:
            message = parse_message(data, stream=stream)
        except SipSyntaxError as exc:
            log.info("malformed message from %s:%s: %s", source.host, source.port, exc.reason)
            reply = error_response(data, exc.status, _reason_for(exc))
            if reply is not None:
                self._send_bytes(reply, source)
            return
        except Exception:
            # A parser bug (it must raise only SipSyntaxError; the fuzz tests hold it to that):
            # answer 500 statelessly and go on, so a TCP connection survives it (issue 9 item 2).
            log.exception("parser failed on a message from %s:%s", source.host, source.port)
            reply = error_response(data, 500, "Server Internal Error")
            if reply is not None:
                self._send_bytes(reply, source)
            return
        try:
            self._process(message, source)
        except SipSyntaxError as exc:
            log.info("rejected message from %s:%s: %s", source.host, source.port, exc.reason)
            if looks_like_request(data):
                reply = error_response(data, exc.status, _reason_for(exc))
                if reply is not None:
                    self._send_bytes(reply, source)
        except Exception:  # our bug: log it, keep serving every other peer
            log.exception("error handling message from %s:%s", source.host, source.port)

    def _process(self, message: Message, source: Peer) -> None:
        now = self.clock()
        if isinstance(message, Request):
            outputs = self.layer.receive_request(message, source, now)
        else:
            outputs = self.layer.receive_response(message, source, now)
        self._run(outputs)

    # -- output -----------------------------------------------------------------------------

    def respond(self, tx: str, response: Response) -> None:
        self._run(self.layer.send_response(tx, response, self.clock()))

    def request(self, request: Request, dest: Peer) -> str:
        tx, outputs = self.layer.send_request(request, dest, self.clock())
        self._run(outputs)
        return tx

    def _run(self, outputs: list[TxOutput]) -> None:
        for out in outputs:
            try:
                self._dispatch(out)
            except Exception:
                log.exception("error while handling %s", type(out).__name__)
        self._wakeup.set()

    def _dispatch(self, out: TxOutput) -> None:
        if isinstance(out, Send):
            self._send_bytes(out.message.to_bytes(), out.peer)
        elif isinstance(out, RequestReceived):
            try:
                self.handler.on_request(out.server_tx, out.request, out.source)
            except Exception:
                # The TU's own guard failed: still end the transaction (RFC 3261 §8.2, a UAS
                # answers every request; an INVITE in Proceeding has no timer and would leak).
                if out.server_tx and self.layer.awaiting_final(out.server_tx):
                    self.respond(out.server_tx, make_response(out.request, 500))
                raise
        elif isinstance(out, CancelReceived):
            self.handler.on_cancel(out.invite_tx, out.request)
        elif isinstance(out, AckReceived):
            self.handler.on_ack(out.server_tx, out.request)
        elif isinstance(out, ResponseReceived):
            self.handler.on_response(out.client_tx, out.response)
        elif isinstance(out, TimedOut):
            self.handler.on_timeout(out.tx, out.method)

    def _send_bytes(self, data: bytes, peer: Peer) -> None:
        if peer.transport == "udp":
            transport = next(iter(self._udp.values()), None)
            if transport is not None:
                transport.sendto(data, (peer.host, peer.port))
            return
        writer = self._tcp_conns.get(peer)
        if writer is None:
            self._spawn(self._connect_and_send(peer, data))
        elif writer.is_closing():
            return  # going away; once its read loop has ended, a send connects anew
        elif writer.transport.get_write_buffer_size() + len(data) > TCP_WRITE_MAX:
            # A peer that sends but does not read would queue our answers without bound.
            self.guard.stats["tcp_write_overflow"] += 1
            log.warning("tcp: %s:%s reads nothing of what we send (%d bytes queued); closing",
                        peer.host, peer.port, writer.transport.get_write_buffer_size())
            writer.transport.abort()  # close() would wait for the queue to drain: never
        else:
            writer.write(data)

    async def _connect_and_send(self, peer: Peer, data: bytes) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(peer.host, peer.port), 5.0
            )
        except (TimeoutError, OSError) as exc:
            log.warning("cannot connect to tcp:%s:%s: %s", peer.host, peer.port, exc)
            return
        # Our own connection (to a TCP-registered phone or a trunk) counts towards the total:
        # it holds a descriptor like any other.
        if not self.guard.connection(peer.host, outbound=True):
            writer.close()
            return
        try:
            self._tcp_conns[peer] = writer
            writer.write(data)
            await self._read_tcp(reader, writer, peer, established=True)
        finally:
            self.guard.release(peer.host)

    # -- TCP --------------------------------------------------------------------------------

    def _accepted(self, conn: socket.socket, host: str) -> None:
        self._spawn(self._serve_accepted(conn, host))

    async def _serve_accepted(self, conn: socket.socket, host: str) -> None:
        try:
            try:
                reader, writer = await asyncio.open_connection(sock=conn)
            except OSError:
                conn.close()
                return
            await self._serve_tcp(reader, writer)
        finally:
            self.guard.release(host)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = Peer("tcp", host, port)
        self._tcp_conns[peer] = writer
        await self._read_tcp(reader, writer, peer)

    async def _read_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer,
        *, established: bool = False,
    ) -> None:
        """Read frames until EOF, a framing error or idleness: `tcp_idle` seconds while no
        complete message has come yet or one is half received (an unauthenticated peer holding
        descriptors, RFC 4475 clerr), TCP_IDLE_SECONDS between messages after that."""
        framer = StreamFramer()
        had_message = established
        try:
            while True:
                waiting = framer.buffered or not had_message
                idle = self.limits.tcp_idle if waiting else TCP_IDLE_SECONDS
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), idle)
                except TimeoutError:
                    self.guard.stats["tcp_idle_closed"] += 1
                    log.info("closing idle tcp connection from %s:%s (%s)", peer.host, peer.port,
                             "no complete message" if waiting else "idle")
                    break
                if not chunk:
                    break
                try:
                    frames = framer.feed(chunk)
                except FramingError as exc:
                    # RFC 4475 ncl/mcl01: framing cannot recover. Serve the good frames that came
                    # before the bad one, answer the bad one if we can, then close.
                    self._frames(exc.frames, peer, writer)
                    log.info("tcp framing error from %s:%s: %s", peer.host, peer.port, exc.reason)
                    reply = error_response(chunk, exc.status, _reason_for(exc))
                    if reply is not None:
                        writer.write(reply)
                    break
                had_message = had_message or any(frame != PING for frame in frames)
                self._frames(frames, peer, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            if self._tcp_conns.get(peer) is writer:
                del self._tcp_conns[peer]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _frames(self, frames: Iterable[bytes], peer: Peer, writer: asyncio.StreamWriter) -> None:
        for frame in frames:
            if frame == PING:
                writer.write(PONG)  # RFC 5626 §3.5.1
                continue
            if self._admit(frame, peer):
                self._feed(frame, peer, stream=True)

    # -- timers -----------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        # The flag, not only cancel(): Python 3.11's wait_for drops a cancellation that arrives
        # as the wake-up event is set (CPython gh-86296), and this loop would then run forever.
        while not self._closing:
            deadline = self.layer.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self.clock())
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)
            now = self.clock()
            deadline = self.layer.next_deadline()
            if deadline is not None and deadline <= now:
                outputs = self.layer.handle_timer(now)
                for out in outputs:
                    try:
                        self._dispatch(out)
                    except Exception:
                        log.exception("error while handling %s", type(out).__name__)

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._tcp_conns.values()):
            writer.close()
        for listener in self._tcp_listeners:
            listener.close()
        self._tcp_listeners.clear()
        for transport in self._udp.values():
            transport.close()


def _os_reason(exc: OSError) -> str:
    """"address already in use": the OS's message, lower case, without "[Errno 98]"."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _reason_for(exc: SipSyntaxError) -> str:
    return {505: "Version Not Supported", 501: "Not Implemented"}.get(
        exc.status, f"Bad Request ({exc.reason})"
    )
