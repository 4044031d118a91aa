"""An in-process switch (memory store, real UDP/TCP sockets on 127.0.0.1) and a raw SIP client,
for the tests that hold the TU to "every request gets exactly one final response"."""

from __future__ import annotations

import asyncio
import socket
import stat
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from pbxcore.config import load_config
from pbxcore.server import RunningSwitch, start_switch
from pbxcore.sip.message import Response, SipSyntaxError, parse_message
from tests.integration.switch_harness import free_port, write_config

#: Routes of the guard tests: 1xx numbers are rejected busy by a real script, 2 answers and
#: hangs up, 3xx numbers need digest auth; anything else matches no route.
ROUTES = """
[[routes]]
match = "^1[0-9]*$"
script = "{busy}"
public = true

[[routes]]
match = "^2$"
script = "{answer}"
public = true

[[routes]]
match = "^3[0-9]*$"
script = "{busy}"
"""


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@asynccontextmanager
async def guarded_switch(tmp_path: Path, *, t1: float | None = None
                         ) -> AsyncIterator[tuple[RunningSwitch, int]]:
    """A started switch and its SIP port.  `t1` shortens the transaction timers (J, H, I, L
    are multiples of T1/T4) so a test can wait, in a bounded loop, for transactions to end."""
    busy = _script(tmp_path / "busy.sh", 'case "$PBX_EVENT" in incoming) echo "reject busy";; esac\n')
    answer = _script(tmp_path / "answer.sh",
                     'case "$PBX_EVENT" in incoming) echo answer; echo hangup;; esac\n')
    port = free_port()
    config_path = write_config(tmp_path, port=port, scripts=tmp_path,
                               routes=ROUTES.format(busy=busy, answer=answer))
    text = config_path.read_text().replace('dsn = "sqlite:///var/pbx.db"', 'dsn = "memory://"')
    config_path.write_text(text)
    running = await start_switch(load_config(config_path))
    if t1 is not None:
        layer = running.endpoint.layer
        layer.t1, layer.t4 = t1, 10 * t1
    try:
        yield running, port
    finally:
        await running.stop()


async def wait_no_transactions(running: RunningSwitch, timeout: float = 20.0) -> int:
    """Poll (bounded) until no server transaction is alive; returns how many are left."""
    layer = running.endpoint.layer
    deadline = time.monotonic() + timeout
    while layer.server_transactions() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return layer.server_transactions()


class RawClient:
    """A UDP socket that sends raw bytes and collects the responses addressed to it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.received: list[bytes] = []

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def pump(self) -> list[bytes]:
        """Read what has arrived into `received` (kept: several waits share one socket)."""
        new: list[bytes] = []
        while True:
            try:
                new.append(self.sock.recv(65535))
            except BlockingIOError:
                self.received += new
                return new

    async def wait_for(self, want: Callable[[bytes], bool], timeout: float = 10.0) -> bytes:
        """The first datagram received (now or within `timeout`) for which `want` is true."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            for data in self.received:
                if want(data):
                    self.received.remove(data)
                    return data
            if time.monotonic() >= deadline:
                raise AssertionError("nothing wanted arrived in time")
            await asyncio.sleep(0.005)

    def _finals(self, call_id: str) -> list[Response]:
        """The final responses for `call_id` received so far, taken out of `received`."""
        out: list[Response] = []
        for data in list(self.received):
            try:
                msg = parse_message(data)
            except SipSyntaxError:
                continue
            if isinstance(msg, Response) and msg.status >= 200 and msg.call_id == call_id:
                out.append(msg)
                self.received.remove(data)
        return out

    async def finals(self, call_id: str, timeout: float = 10.0, settle: float = 0.0
                     ) -> list[Response]:
        """The final responses for `call_id`: wait (bounded) for the first, then collect what
        else arrives within `settle` seconds (retransmissions, or a wrong second answer)."""
        deadline = time.monotonic() + timeout
        settled: float | None = None
        got: list[Response] = []
        while True:
            self.pump()
            got += self._finals(call_id)
            if got and settled is None:
                settled = time.monotonic() + settle
            now = time.monotonic()
            if now >= deadline or (settled is not None and now >= settled):
                return got
            await asyncio.sleep(0.005)

    def close(self) -> None:
        self.sock.close()


def request(method: str, port: int, local_port: int, *, user: str = "1", call_id: str = "",
            cseq: str = "1", from_tag: str = "", branch: str = "", body: bytes = b"",
            extra: str = "", content_type: str | None = None) -> tuple[bytes, str]:
    """A well-formed request (bytes, Call-ID), with room for the fuzzer's changes."""
    call_id = call_id or uuid.uuid4().hex + "@guard"
    branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
    from_tag = from_tag or uuid.uuid4().hex[:8]
    ctype = f"Content-Type: {content_type}\r\n" if content_type else ""
    head = (
        f"{method} sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch};rport\r\n"
        f"From: <sip:1001@127.0.0.1>;tag={from_tag}\r\n"
        f"To: <sip:{user}@127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:1001@127.0.0.1:{local_port}>\r\nMax-Forwards: 70\r\n"
        f"{ctype}{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("utf-8", "surrogateescape") + body, call_id


def ack_for(final: Response, port: int, local_port: int, user: str = "1") -> bytes:
    """The ACK a UAC sends for a non-2xx final (same branch, §17.1.1.3) or a 2xx (new one)."""
    via = final.headers.get("Via") or ""
    if final.status < 300:
        via = f"SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]}"
    return (
        f"ACK sip:{user}@127.0.0.1:{port} SIP/2.0\r\nVia: {via}\r\n"
        f"From: {final.headers.get('From')}\r\nTo: {final.headers.get('To')}\r\n"
        f"Call-ID: {final.call_id}\r\nCSeq: {final.cseq[0]} ACK\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode("utf-8", "surrogateescape")


def sdp(port: int, *, formats: str = "0 101", fmtp: str = "101") -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:{fmtp} 0-15\r\na=sendrecv\r\n"
    ).encode()
