"""The whole switch in one process, its SIP wire in memory and its SIP clock in the test's hand.

`start_inproc(config)` builds the switch with the composition root `pbx run` uses
(`server.start_switch`): the real `Switch`, `SipEndpoint`, transaction layer, registrar, call
engine, store, pacer, media and script transports.  Only two things differ:

* the sockets of `[sip] listen` are in memory (`MemoryNet`): a datagram goes to whoever holds the
  destination address, a TCP connection is an `asyncio.StreamReader` fed by the peer and a writer
  that hands bytes back, and the endpoint's own code (`datagram`, `_serve_tcp`, `_send_bytes`,
  the stream framer) does the rest, as it does over real sockets;
* the SIP clock is a `FakeClock`: the transaction timers (A-K, the 2xx retransmissions and the
  64*T1 wait for an ACK), registration expiry and digest nonce age advance only when the test calls
  `InProcSwitch.advance(seconds)`, which fires every timer due on the way in deadline order.

Media stays on real 127.0.0.1 UDP sockets (RTP is timed by the pacer, in real time) and scripts
are real processes (the CGI contract).  `Phone` is the far end: it writes SIP as text, reads what
the switch sends, and answers digest challenges.  Nothing here sleeps to make time pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pbxcore.config import Config, Limits
from pbxcore.server import RunningSwitch, start_switch
from pbxcore.sip.framing import StreamFramer
from pbxcore.sip.message import Message, Request, Response, parse_message
from pbxcore.sip.peer import Peer
from pbxcore.sip.registration import Credentials, authorize
from pbxcore.sip.transaction import TransactionLayer
from pbxcore.transport.sip_endpoint import ListenSpec, SipEndpoint, SipHandler

Addr = tuple[str, int]
TcpServer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class MemoryNet:
    """Addresses → receivers.  Delivery is on the next loop pass, never re-entrant, like a wire."""

    def __init__(self) -> None:
        self._udp: dict[Addr, Callable[[bytes, Peer], None]] = {}
        self._tcp: dict[Addr, TcpServer] = {}
        self.dropped: list[tuple[Addr, Addr, bytes]] = []  # datagrams to nobody (src, dst, data)
        self.connections: list[MemoryStream] = []

    def bind_udp(self, addr: Addr, receiver: Callable[[bytes, Peer], None]) -> None:
        self._udp[addr] = receiver

    def listen_tcp(self, addr: Addr, server: TcpServer) -> None:
        self._tcp[addr] = server

    def sendto(self, src: Addr, dst: Addr, data: bytes) -> None:
        receiver = self._udp.get(dst)
        if receiver is None:
            self.dropped.append((src, dst, data))
            return
        asyncio.get_running_loop().call_soon(receiver, bytes(data), Peer("udp", *src))

    def connect(self, src: Addr, dst: Addr, on_data: Callable[[bytes], None]) -> MemoryStream:
        """Open a stream from `src` to the TCP server at `dst`; bytes it sends come to `on_data`."""
        server = self._tcp.get(dst)
        if server is None:
            raise ConnectionRefusedError(f"nothing listens on tcp:{dst[0]}:{dst[1]}")
        stream = MemoryStream(src, dst, on_data)
        self.connections.append(stream)
        stream.task = asyncio.ensure_future(server(stream.reader, cast(Any, stream.writer)))
        return stream


class _MemoryWriter:
    """The server side's StreamWriter: what it writes goes to the connecting peer."""

    def __init__(self, stream: MemoryStream) -> None:
        self._stream = stream
        self._closed = False
        self.transport = self  # the endpoint asks its transport for the queued bytes

    def get_write_buffer_size(self) -> int:
        return 0  # delivered at once: nothing ever queues

    def abort(self) -> None:
        self.close()

    def write(self, data: bytes) -> None:
        if not self._closed:
            asyncio.get_running_loop().call_soon(self._stream.on_data, bytes(data))

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._stream.closed_by_server = True

    async def wait_closed(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": self._stream.src, "sockname": self._stream.dst}.get(name, default)


class MemoryStream:
    """One in-memory TCP connection, seen from the connecting side."""

    def __init__(self, src: Addr, dst: Addr, on_data: Callable[[bytes], None]) -> None:
        self.src, self.dst, self.on_data = src, dst, on_data
        self.reader = asyncio.StreamReader()
        self.writer = _MemoryWriter(self)
        self.closed_by_server = False
        self.task: asyncio.Future[None] | None = None

    def send(self, data: bytes) -> None:
        self.reader.feed_data(data)

    def close(self) -> None:
        self.reader.feed_eof()


class _MemoryDatagramTransport(asyncio.DatagramTransport):
    def __init__(self, net: MemoryNet, local: Addr) -> None:
        super().__init__()
        self._net, self._local = net, local
        self._closing = False

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if not self._closing and addr is not None:
            self._net.sendto(self._local, (addr[0], addr[1]), bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._local if name == "sockname" else default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True


class MemoryEndpoint(SipEndpoint):
    """`SipEndpoint` whose listen sockets are in a `MemoryNet` and whose timers are stepped.

    Only `start` differs: everything after a byte arrives (parsing, stateless errors, the
    transaction layer, the TCP framer and connection table, choosing UDP or TCP to send) is the
    endpoint's own code.  There is no timer task: `fire_due` runs what the clock made due."""

    def __init__(self, handler: SipHandler, layer: TransactionLayer | None,
                 clock: Callable[[], float], limits: Limits, trusted_hosts: list[str], *,
                 net: MemoryNet) -> None:
        super().__init__(handler, layer, clock, limits, trusted_hosts)
        self.net = net

    async def start(self, listen: Any) -> None:
        for spec in listen:
            addr = (spec.host, spec.port or 5060)
            if spec.transport == "udp":
                self._udp[addr] = _MemoryDatagramTransport(self.net, addr)
                self.net.bind_udp(addr, self.datagram)
            else:
                self.net.listen_tcp(addr, self._serve_tcp)
            self.bound.append(ListenSpec(spec.transport, *addr))

    def fire_due(self, now: float) -> bool:
        """Run the timers due at `now`; False when none was."""
        deadline = self.layer.next_deadline()
        if deadline is None or deadline > now:
            return False
        self._run(self.layer.handle_timer(now))
        return True


async def settle(rounds: int = 20) -> None:
    """Let every ready callback run (deliveries, handlers, tasks they started)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@dataclass
class InProcSwitch:
    """A running in-process switch, its wire and its clock."""

    running: RunningSwitch
    net: MemoryNet
    clock: FakeClock
    address: Addr  # where its UDP and TCP listen
    phones: list[Phone] = field(default_factory=list)

    @property
    def endpoint(self) -> MemoryEndpoint:
        return cast(MemoryEndpoint, self.running.endpoint)

    async def advance(self, seconds: float) -> None:
        """Move the clock by `seconds`, firing each timer at its own deadline on the way."""
        target = self.clock.now + seconds
        while True:
            deadline = self.endpoint.layer.next_deadline()
            if deadline is None or deadline > target:
                break
            self.clock.now = max(self.clock.now, deadline)
            self.endpoint.fire_due(self.clock.now)
            await settle()
        self.clock.now = target
        await settle()

    def phone(self, host: str, *, port: int = 5060, transport: str = "udp") -> Phone:
        phone = Phone(self, host, port=port, transport=transport)
        self.phones.append(phone)
        return phone

    async def stop(self) -> None:
        """Stop the switch as `pbx run` does, then close every phone's RTP socket."""
        try:
            await self.running.stop(grace=5.0)
        finally:
            for phone in self.phones:
                phone.close()
            await settle()


async def start_inproc(config: Config, *, clock: FakeClock | None = None) -> InProcSwitch:
    """Start the switch of `config` on an in-memory wire; `await sw.stop()` when done."""
    net = MemoryNet()
    fake = clock or FakeClock()

    def make(handler: SipHandler, layer: TransactionLayer, clk: Callable[[], float],
             limits: Limits, trusted_hosts: list[str]) -> SipEndpoint:
        return MemoryEndpoint(handler, layer, clk, limits, trusted_hosts, net=net)

    running = await start_switch(config, clock=fake, make_endpoint=make)
    udp = running.endpoint.local("udp")
    return InProcSwitch(running, net, fake, (udp.host, udp.port))


# -- the far end -----------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_hex(6)


@dataclass
class Received:
    message: Message
    taken: bool = False


@dataclass
class Phone:
    """A SIP phone on the in-memory wire: raw text out, parsed messages in, nothing automatic.

    Over TCP it opens one connection to the switch at first send and keeps it (RFC 5626 style),
    so the switch can reach it back on that connection."""

    switch: InProcSwitch
    host: str
    port: int = 5060
    transport: str = "udp"
    received: list[Received] = field(default_factory=list)
    rtp_packets: list[bytes] = field(default_factory=list)
    rtp_port: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _stream: MemoryStream | None = None
    _framer: StreamFramer = field(default_factory=StreamFramer)
    _rtp: asyncio.DatagramTransport | None = None

    @property
    def addr(self) -> Addr:
        return (self.host, self.port)

    @property
    def via(self) -> str:
        return (f"SIP/2.0/{self.transport.upper()} {self.host}:{self.port}"
                f";branch=z9hG4bK{new_token()};rport")

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.host}:{self.port};transport={self.transport}>"

    async def open_rtp(self) -> int:
        """A real UDP socket on 127.0.0.1 for this phone's media; counts what arrives."""
        phone = self

        class _Rtp(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                phone.rtp_packets.append(data)

        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            _Rtp, local_addr=("127.0.0.1", 0))
        self._rtp = transport
        self.rtp_port = transport.get_extra_info("sockname")[1]
        return self.rtp_port

    def close(self) -> None:
        if self._rtp is not None:
            self._rtp.close()
        if self._stream is not None:
            self._stream.close()

    # -- wire ---------------------------------------------------------------------------------

    def _deliver(self, data: bytes, source: Peer | None = None) -> None:
        self.received.append(Received(parse_message(data, stream=self._stream is not None)))
        self._arrived.set()

    def _on_stream(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            self._deliver(frame)

    def listen(self) -> None:
        """Receive datagrams at this phone's address (UDP phones do at first send)."""
        self.switch.net.bind_udp(self.addr, self._deliver)

    def send(self, message: Request | Response | bytes) -> None:
        data = message if isinstance(message, bytes) else message.to_bytes()
        net = self.switch.net
        if self.transport == "udp":
            self.listen()
            net.sendto(self.addr, self.switch.address, data)
            return
        if self._stream is None or self._stream.closed_by_server:
            self._framer = StreamFramer()
            self._stream = net.connect(self.addr, self.switch.address, self._on_stream)
        self._stream.send(data)

    async def expect(self, match: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        """The first message not yet taken that `match`es (waiting up to `timeout` real s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for item in self.received:
                if not item.taken and match(item.message):
                    item.taken = True
                    return item.message
            left = deadline - loop.time()
            if left <= 0:
                seen = [_first_line(r.message) for r in self.received]
                raise AssertionError(f"{self.host}: nothing matched within {timeout}s; "
                                     f"received {seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def response(self, to: Request, *, final: bool = True, status: int | None = None,
                       timeout: float = 5.0) -> Response:
        """The next response to `to` (same Call-ID and CSeq): the final one unless final=False."""

        def match(m: Message) -> bool:
            return (isinstance(m, Response) and m.call_id == to.call_id and m.cseq == to.cseq
                    and (status is None or m.status == status)
                    and (not final or m.status >= 200))

        return cast(Response, await self.expect(match, timeout))

    async def request(self, method: str, *, call_id: str | None = None,
                      timeout: float = 5.0) -> Request:
        def match(m: Message) -> bool:
            return (isinstance(m, Request) and m.method == method
                    and (call_id is None or m.call_id == call_id))

        return cast(Request, await self.expect(match, timeout))

    def statuses(self, call_id: str) -> list[int]:
        """Every response status received for `call_id`, in order."""
        return [r.message.status for r in self.received
                if isinstance(r.message, Response) and r.message.call_id == call_id]

    # -- building messages -------------------------------------------------------------------

    def build(self, method: str, uri: str, *, user: str, to: str | None = None,
              call_id: str | None = None, cseq: int = 1, from_tag: str | None = None,
              to_tag: str | None = None, headers: list[tuple[str, str]] | None = None,
              body: bytes = b"", display: str = "") -> Request:
        host, port = self.switch.address
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: {self.via}",
            "Max-Forwards: 70",
            f"From: {display + ' ' if display else ''}<sip:{user}@{host}>"
            f";tag={from_tag or new_token()}",
            f"To: <{to or uri}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id or new_token() + '@' + self.host}",
            f"CSeq: {cseq} {method}",
            f"Contact: {self.contact(user)}",
        ]
        lines += [f"{k}: {v}" for k, v in headers or []]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        assert isinstance(message, Request)
        return message

    async def send_authenticated(self, request: Request, user: str, password: str,
                                 timeout: float = 5.0) -> tuple[Request, Response]:
        """Send `request`; answer a 401/407 once.  (the request finally sent, its final answer)"""
        self.send(request)
        reply = await self.response(request, timeout=timeout)
        if reply.status in (401, 407):
            retry = authorize(request, reply, Credentials(user, password))
            assert retry is not None, "the challenge could not be answered"
            self.send(retry)
            return retry, await self.response(retry, timeout=timeout)
        return request, reply

    async def register(self, user: str, password: str, *, expires: int | None = 3600,
                       contact: str | None = None) -> Response:
        host, port = self.switch.address
        headers = [] if expires is None else [("Expires", str(expires))]
        request = self.build("REGISTER", f"sip:{host}:{port}", user=user,
                             to=f"sip:{user}@{host}", headers=headers)
        if contact is not None:
            request.headers.set("Contact", contact)
        _, reply = await self.send_authenticated(request, user, password)
        return reply

    def cancel(self, invite: Request) -> Request:
        """The CANCEL of our `invite` (RFC 3261 §9.1: same Via, Call-ID, From, To, CSeq number)."""
        lines = [f"CANCEL {invite.uri} SIP/2.0", f"Via: {invite.headers.get('Via')}",
                 "Max-Forwards: 70", f"From: {invite.headers.get('From')}",
                 f"To: {invite.headers.get('To')}", f"Call-ID: {invite.call_id}",
                 f"CSeq: {invite.cseq[0]} CANCEL", "Content-Length: 0"]
        message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
        assert isinstance(message, Request)
        return message

    def sdp(self, direction: str = "sendrecv", *, version: int = 1) -> bytes:
        return (f"v=0\r\no=- 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                f"t=0 0\r\nm=audio {self.rtp_port or 9} RTP/AVP 0 101\r\n"
                "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                f"a=fmtp:101 0-16\r\na=ptime:20\r\na={direction}\r\n").encode()

    def reply(self, request: Request, status: int, *, to_tag: str | None = None,
              body: bytes = b"", reason: str = "") -> Response:
        """A response to a request the switch sent to this phone."""
        lines = [f"SIP/2.0 {status} {reason or _REASONS.get(status, 'Whatever')}"]
        lines += [f"Via: {v}" for v in request.headers.get_all("Via")]
        to = request.headers.get("To") or ""
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines += [f"From: {request.headers.get('From')}", f"To: {to}",
                  f"Call-ID: {request.call_id}", f"CSeq: {request.cseq[0]} {request.cseq[1]}"]
        if status < 300 and request.method == "INVITE":
            lines.append(f"Contact: {self.contact('phone')}")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        assert isinstance(message, Response)
        return message


_REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 480: "Unavailable",
            486: "Busy Here", 487: "Request Terminated", 603: "Decline"}


def _first_line(message: Message) -> str:
    if isinstance(message, Request):
        return f"{message.method} {message.call_id}"
    return f"{message.status} {message.cseq[1]} {message.call_id}"
