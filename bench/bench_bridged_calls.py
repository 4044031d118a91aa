"""Concurrent bridged calls relaying RTP both ways: relay-added delay, loss, CPU and memory per call.

    .venv/bin/python bench/bench_bridged_calls.py [--n 100,250,500] [--window 10]
        [--baseline-window 5] [--rate 50] [--slots 10]

For each N a fresh `pbx run` (tests/integration/switch_harness.py) gets N registered callee
extensions (20000..20000+N-1) and a public route `^2\\d{4}$` whose /bin/sh script prints
`dial $PBX_CALLED`.  ONE asyncio process (this one) is the load generator: every callee has its
own SIP and RTP socket, REGISTERs with digest and answers the switch's INVITE with 200 + SDP;
N callers, each with its own SIP and RTP socket, INVITE 2xxxx at --rate calls/s.  The switch rings
the callee and relays RTP between its two media sessions (pbxcore/media/bridge.py).

Once every call is bridged, all 2N legs send 20 ms PCMU packets, paced by ONE timer for all
sockets (streams spread over --slots phases of the 20 ms period, as real phones are not in
step).  Each payload starts with the send time (CLOCK_REALTIME ns, taken right before sendto),
a magic, the stream number and a "measured" flag; the rest is mu-law silence.  The far side reads
the kernel's arrival timestamp (SO_TIMESTAMPNS, also CLOCK_REALTIME), so the delay is
wire-to-wire through the switch and excludes this process's own scheduling on receive.
The same generator first sends socket-to-socket with no switch: the direct baseline.
relay-added = through-switch - direct (per percentile).

Over WINDOW seconds we print delay p50/p99/max, packets lost (measured packets sent but never
received after a 0.5 s drain), packets delivered to the wrong call, UDP receive-buffer drops
(/proc/net/snmp, system-wide), the switch's CPU% (utime+stime from /proc/PID/stat; 100% = one
core) and per bridged call, this generator's CPU% (it shares the 2 cores), and memory per bridged
call = (RSS with N bridged - RSS idle after one warm-up call) / N.
Goal (issue 4): >= 500 bridged calls with relay-added p99 < 10 ms.  Prints figures; asserts nothing.
Every process started here is stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import socket
import struct
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import CLK_TCK, HOST, SO_TIMESTAMPNS, cpu_percent, pct, proc_sample  # noqa: E402
from switch_harness import SwitchProcess, free_port, start_switch, write_config  # noqa: E402

from pbxcore.sip.digest import authorization_for  # noqa: E402
from pbxcore.sip.message import Request, Response, SipSyntaxError, parse_message  # noqa: E402
from pbxcore.sip.sdp import parse_sdp  # noqa: E402

GOAL_CALLS = 500
GOAL_P99_MS = 10.0
EXT_BASE = 20000
MAGIC = b"PBXB"
RTP_HEADER = struct.Struct("!BBHII")  # V=2 flags, PT, seq, timestamp, SSRC (RFC 3550 §5.1)
PAYLOAD = struct.Struct("<q4sIB")  # send ns, magic, stream, measured flag
TAIL = b"\xff" * (160 - PAYLOAD.size)  # mu-law silence
TS = struct.Struct("qq")
SCRIPT = """#!/bin/sh
case "$PBX_EVENT" in
    incoming) echo "dial $PBX_CALLED timeout=20" ;;
esac
"""


# --- RTP: the paced senders and timestamping receivers --------------------------------------

@dataclass(eq=False)
class Stream:
    """One leg's RTP socket: it sends stream `idx` and expects to receive stream `expect`."""

    idx: int
    expect: int
    sock: socket.socket
    dest: tuple[str, int] | None = None
    seq: int = field(default_factory=lambda: random.getrandbits(16))
    ts: int = field(default_factory=lambda: random.getrandbits(32))
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


class Rtp:
    """2N RTP streams (2i: caller i, 2i+1: callee i), one pacing timer, kernel arrival times."""

    def __init__(self, n: int, slots: int) -> None:
        self.streams: list[Stream] = []
        for i in range(2 * n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # our lag is not loss
            s.bind((HOST, 0))
            s.setblocking(False)
            self.streams.append(Stream(i, i ^ 1, s))
        self.slots = [self.streams[k::slots] for k in range(slots)]
        self.measuring = False
        self.delays = array("q")  # ns, measured packets only
        self.sent_at = array("q")  # their send times (ns), when dumping
        self.dump = False
        self.sent = self.received = self.misrouted = 0
        self.late: list[float] = []  # pacing lateness of our own timer (s), while measuring
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for st in self.streams:
            loop.add_reader(st.sock.fileno(), self._on_readable, st)
        self._task = loop.create_task(self._pace())

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for st in self.streams:
            loop.remove_reader(st.sock.fileno())
            st.sock.close()

    def reset(self) -> None:
        self.delays = array("q")
        self.sent_at = array("q")
        self.sent = self.received = self.misrouted = 0
        self.late = []

    async def _pace(self) -> None:
        # One timer for all sockets: absolute deadlines, one slot of streams per phase.
        loop = asyncio.get_running_loop()
        period = 0.020 / len(self.slots)
        deadline = loop.time()
        k = 0
        while True:
            now = loop.time()
            if self.measuring:
                self.late.append(now - deadline)
            flag = 1 if self.measuring else 0
            for st in self.slots[k % len(self.slots)]:
                if st.dest is None:
                    continue
                header = RTP_HEADER.pack(0x80, 0, st.seq, st.ts, st.ssrc)
                st.seq = (st.seq + 1) & 0xFFFF
                st.ts = (st.ts + 160) & 0xFFFFFFFF
                data = header + PAYLOAD.pack(time.time_ns(), MAGIC, st.idx, flag) + TAIL
                try:
                    st.sock.sendto(data, st.dest)
                except OSError:
                    continue
                self.sent += flag
            k += 1
            deadline += period
            if deadline - loop.time() < -0.1:  # more than 100 ms behind: skip, never burst
                deadline = loop.time()
            await asyncio.sleep(max(0.0, deadline - loop.time()))

    def _on_readable(self, st: Stream) -> None:
        sock = st.sock
        while True:
            try:
                data, anc, _, _ = sock.recvmsg(512, 64)
            except BlockingIOError:
                return
            except OSError:
                return
            if len(data) < 12 + PAYLOAD.size:
                continue
            sent_ns, magic, idx, flag = PAYLOAD.unpack_from(data, 12)
            if magic != MAGIC:
                continue  # ringback or silence from the switch before the bridge
            if idx != st.expect:
                self.misrouted += 1
                continue
            if not flag:
                continue
            arrived = 0
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = TS.unpack_from(raw)
                    arrived = sec * 1_000_000_000 + nsec
            self.received += 1
            self.delays.append((arrived or time.time_ns()) - sent_ns)
            if self.dump:
                self.sent_at.append(sent_ns)


# --- SIP: registered callees and callers, just enough RFC 3261 -----------------------------

class _Sip(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.handle = handle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.handle(data, addr)
        except (SipSyntaxError, ValueError, IndexError) as exc:
            print(f"  load generator: bad SIP message ({exc})", file=sys.stderr)


def _branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def _reply(req: Request, status: int, reason: str, *, tag: str = "", extra: str = "",
           body: bytes = b"") -> bytes:
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in req.headers.get_all("Via")]
    to = req.headers.get("To") or ""
    lines += [f"From: {req.headers.get('From')}",
              f"To: {to};tag={tag}" if tag and "tag=" not in to else f"To: {to}",
              f"Call-ID: {req.call_id}", f"CSeq: {req.headers.get('CSeq')}"]
    head = "\r\n".join(lines) + "\r\n" + extra + f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _sdp(port: int) -> bytes:
    return (f"v=0\r\no=bench 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n").encode()


def _media(body: bytes) -> tuple[str, int]:
    sdp = parse_sdp(body)
    m = sdp.media[0]
    return (m.connection or sdp.connection or HOST, m.port)


class Callee:
    """A registered phone: REGISTER (digest), answer every INVITE at once with 200 + SDP."""

    def __init__(self, ext: str, password: str, rtp: Stream, switch: tuple[str, int]) -> None:
        self.ext, self.password, self.rtp, self.switch = ext, password, rtp, switch
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.registered: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.answers: dict[str, bytes] = {}  # Call-ID -> our 200 (resent on retransmission)
        self.acked = asyncio.Event()
        self.byes = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Sip(self._on), local_addr=(HOST, 0))
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    async def register(self, timeout: float = 5.0) -> int:
        call_id, auth = secrets.token_hex(8), ""
        uri = f"sip:{self.switch[0]}:{self.switch[1]}"
        status = 0
        for cseq in (1, 2):
            self.registered = asyncio.get_running_loop().create_future()
            head = (f"REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{self.port};branch={_branch()};rport\r\n"
                    f"From: <sip:{self.ext}@{HOST}>;tag={secrets.token_hex(4)}\r\n"
                    f"To: <sip:{self.ext}@{HOST}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                    f"Contact: <sip:{self.ext}@{HOST}:{self.port}>\r\nExpires: 600\r\n"
                    f"Max-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n")
            assert self.transport is not None
            self.transport.sendto(head.encode(), self.switch)
            resp = await asyncio.wait_for(self.registered, timeout)
            status = resp.status
            if status != 401:
                return status
            value = authorization_for(resp.headers.get_all("WWW-Authenticate")[0],
                                      method="REGISTER", uri=uri, username=self.ext,
                                      password=self.password, cnonce=secrets.token_hex(4))
            auth = f"Authorization: {value}\r\n"
        return status

    def _on(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_message(data)
        assert self.transport is not None
        if isinstance(msg, Response):
            if msg.status >= 200 and not self.registered.done():
                self.registered.set_result(msg)
            return
        if msg.method == "INVITE":
            answer = self.answers.get(msg.call_id)
            if answer is None:  # not a retransmission
                self.rtp.dest = _media(msg.body)
                answer = _reply(msg, 200, "OK", tag=secrets.token_hex(4),
                                extra=f"Contact: <sip:{self.ext}@{HOST}:{self.port}>\r\n"
                                "Content-Type: application/sdp\r\n", body=_sdp(self.rtp.port))
                self.answers[msg.call_id] = answer
            self.transport.sendto(answer, addr)
        elif msg.method == "ACK":
            self.acked.set()
        else:  # BYE, OPTIONS...
            if msg.method == "BYE":
                self.byes += 1
                self.rtp.dest = None
            self.transport.sendto(_reply(msg, 200, "OK"), addr)


class Caller:
    """Places one call at a time to the switch (public route: no digest) and ACKs the 200."""

    def __init__(self, rtp: Stream, switch: tuple[str, int]) -> None:
        self.rtp, self.switch = rtp, switch
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        loop = asyncio.get_running_loop()
        self.final: asyncio.Future[int] = loop.create_future()
        self.bye_ok: asyncio.Future[None] = loop.create_future()
        self.call_id = self.from_tag = self.to_tag = self.called = ""

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Sip(self._on), local_addr=(HOST, 0))
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def invite(self, called: str) -> None:
        loop = asyncio.get_running_loop()
        self.final, self.bye_ok = loop.create_future(), loop.create_future()
        self.call_id, self.from_tag, self.to_tag = secrets.token_hex(10), secrets.token_hex(4), ""
        self.called = called
        body = _sdp(self.rtp.port)
        head = (f"INVITE sip:{called}@{HOST}:{self.switch[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={_branch()};rport\r\n"
                f"From: <sip:bench@{HOST}:{self.port}>;tag={self.from_tag}\r\n"
                f"To: <sip:{called}@{HOST}:{self.switch[1]}>\r\nCall-ID: {self.call_id}\r\n"
                f"CSeq: 1 INVITE\r\nContact: <sip:bench@{HOST}:{self.port}>\r\n"
                f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        assert self.transport is not None
        self.transport.sendto(head.encode() + body, self.switch)

    def _in_dialog(self, method: str, cseq: int) -> bytes:
        return (f"{method} sip:{self.called}@{HOST}:{self.switch[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={_branch()};rport\r\n"
                f"From: <sip:bench@{HOST}:{self.port}>;tag={self.from_tag}\r\n"
                f"To: <sip:{self.called}@{HOST}:{self.switch[1]}>;tag={self.to_tag}\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n").encode()

    def bye(self) -> None:
        self.rtp.dest = None
        assert self.transport is not None
        self.transport.sendto(self._in_dialog("BYE", 2), self.switch)

    def _on(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_message(data)
        assert self.transport is not None
        if isinstance(msg, Request):
            if msg.method == "BYE":
                self.rtp.dest = None
            if msg.method != "ACK":
                self.transport.sendto(_reply(msg, 200, "OK"), addr)
            return
        if msg.call_id != self.call_id:
            return
        cseq, method = msg.cseq
        if method == "BYE":
            if not self.bye_ok.done():
                self.bye_ok.set_result(None)
            return
        if msg.status < 200:
            return
        if msg.status < 300:
            to = msg.headers.get("To") or ""
            self.to_tag = to.split("tag=", 1)[1].split(";")[0] if "tag=" in to else ""
            self.transport.sendto(self._in_dialog("ACK", cseq), self.switch)  # also re-ACK a resent 200
            if not self.final.done():
                self.rtp.dest = _media(msg.body)
        if not self.final.done():
            self.final.set_result(msg.status)


# --- one run --------------------------------------------------------------------------------

def udp_rcvbuf_errors() -> int:
    """System-wide UDP receive-buffer drops (/proc/net/snmp)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def cpu_busy() -> tuple[float, float, float]:
    """(busy, softirq, steal) CPU seconds of the whole machine so far, all cores (/proc/stat).
    Loopback packet delivery partly runs as softirq, not in any process's utime/stime."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK, v[6] / CLK_TCK, v[7] / CLK_TCK


def sys_cpu(pid: int) -> float:
    """Kernel-mode CPU seconds of a process (stime), to split CPU% into user and kernel."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[12]) / CLK_TCK


def free_rtp_block(size: int) -> tuple[int, int]:
    """An even block of ports below the ephemeral range, so our own 4N sockets never take them."""
    for _ in range(100):
        base = random.randrange(10000, 32000 - size) // 2 * 2
        free = True
        for p in range(base, base + size):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((HOST, p))
                except OSError:
                    free = False
                    break
        if free:
            return base, base + size - 1
    raise RuntimeError("no free RTP block")


@dataclass
class Window:
    """Delay and loss over one measurement window."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    sent: int
    lost: int
    misrouted: int
    rcvbuf_drops: int
    gen_cpu: float  # % of one core
    gen_late_p99_ms: float  # our pacing timer's lateness
    machine_cpu: float  # % of one core used by every process on the machine
    softirq_cpu: float  # the part of machine_cpu spent in softirq (packet delivery)
    steal_cpu: float  # taken by the hypervisor


async def measure(rtp: Rtp, seconds: float) -> Window:
    """Flag packets as measured for `seconds`, then drain 0.5 s and summarise."""
    drops0 = udp_rcvbuf_errors()
    me0, all0 = proc_sample(os.getpid()), cpu_busy()
    rtp.reset()
    rtp.measuring = True
    await asyncio.sleep(seconds)
    rtp.measuring = False
    me1, all1 = proc_sample(os.getpid()), cpu_busy()
    await asyncio.sleep(0.5)
    ms = [d / 1e6 for d in rtp.delays]
    return Window(pct(ms, 0.5), pct(ms, 0.99), max(ms, default=float("nan")), rtp.sent,
                  rtp.sent - rtp.received, rtp.misrouted, udp_rcvbuf_errors() - drops0,
                  cpu_percent(me0, me1)[0], pct(rtp.late, 0.99) * 1e3,
                  *(100 * (b - a) / max(me1.at - me0.at, 1e-9) for a, b in zip(all0, all1, strict=True)))


@dataclass
class Result:
    n: int
    registered: int = 0
    bridged: int = 0
    direct: Window | None = None
    switched: Window | None = None
    switch_cpu: float = float("nan")
    switch_sys: float = float("nan")  # the kernel-mode part of switch_cpu
    rss_idle_kb: int = 0
    rss_bridged_kb: int = 0
    rss_after_kb: int = 0
    ramp_s: float = float("nan")
    notes: list[str] = field(default_factory=list)


async def run_n(n: int, args: argparse.Namespace) -> Result:
    res = Result(n)
    rtp = Rtp(n, args.slots)
    rtp.start()
    callers: list[Caller] = []
    callees: list[Callee] = []
    sw: SwitchProcess | None = None
    dir = Path(tempfile.mkdtemp(prefix="bench-bridged-"))
    try:
        # 1. Direct baseline: the same generator, socket to socket.
        for i in range(n):
            a, b = rtp.streams[2 * i], rtp.streams[2 * i + 1]
            a.dest, b.dest = (HOST, b.port), (HOST, a.port)
        await asyncio.sleep(1.0)
        res.direct = await measure(rtp, args.baseline_window)
        for st in rtp.streams:
            st.dest = None

        # 2. The switch, N registered callees, one warm-up call, idle memory.
        (dir / "bridge.sh").write_text(SCRIPT)
        (dir / "bridge.sh").chmod(0o755)
        port = free_port()
        users = {str(EXT_BASE + i): f"pw{EXT_BASE + i}" for i in range(n)}
        routes = (f"[[routes]]\nmatch = '^2\\d{{4}}$'\nscript = \"{dir / 'bridge.sh'}\"\n"
                  "public = true\ntimeout = 10\nfallback = [\"hangup\"]\n")
        config = write_config(dir, port=port, routes=routes, users=users, scripts=dir,
                              rtp=free_rtp_block(4 * n + 200))
        sw = start_switch(dir, config, port)
        switch = (HOST, port)
        for i in range(n):
            ext = str(EXT_BASE + i)
            callees.append(Callee(ext, users[ext], rtp.streams[2 * i + 1], switch))
            callers.append(Caller(rtp.streams[2 * i], switch))
        await asyncio.gather(*(p.open() for p in callees), *(c.open() for c in callers))
        sem = asyncio.Semaphore(50)

        async def register(c: Callee) -> int:
            async with sem:
                try:
                    return await c.register()
                except TimeoutError:
                    return 0
        statuses = await asyncio.gather(*(register(c) for c in callees))
        res.registered = sum(s == 200 for s in statuses)
        if res.registered < n:
            res.notes.append(f"only {res.registered}/{n} callees registered")
        callers[0].invite(callees[0].ext)
        await asyncio.wait([callers[0].final], timeout=10)
        await asyncio.sleep(1.0)
        callers[0].bye()
        await asyncio.wait([callers[0].bye_ok], timeout=5)
        await asyncio.sleep(1.0)
        res.rss_idle_kb = proc_sample(sw.proc.pid).rss_kb
        for c in callees:
            c.acked.clear()

        # 3. Ramp up N calls at --rate.
        t0 = time.monotonic()
        for i, caller in enumerate(callers):
            await asyncio.sleep(max(0.0, t0 + i / args.rate - time.monotonic()))
            caller.invite(callees[i].ext)
        await asyncio.wait([c.final for c in callers], timeout=10)  # after the last INVITE
        acks = [asyncio.ensure_future(c.acked.wait()) for c in callees]
        await asyncio.wait(acks, timeout=5)
        for task in acks:
            task.cancel()
        res.ramp_s = time.monotonic() - t0
        res.bridged = sum(1 for c, p in zip(callers, callees, strict=True)
                          if c.final.done() and c.final.result() == 200
                          and p.acked.is_set())
        failed = [c.final.result() for c in callers if c.final.done() and c.final.result() != 200]
        if failed:
            res.notes.append(f"{len(failed)} calls failed: statuses {sorted(set(failed))}")
        if res.bridged < n:
            res.notes.append(f"only {res.bridged}/{n} bridged within the ramp deadline")

        # 4. Measure with everything bridged.
        await asyncio.sleep(args.settle)
        s0, k0 = proc_sample(sw.proc.pid), sys_cpu(sw.proc.pid)
        rtp.dump = args.dump is not None
        res.switched = await measure(rtp, args.window)
        if args.dump is not None:
            with open(f"{args.dump}-{n}.csv", "w") as f:
                f.write("send_ns,delay_ns\n")
                f.writelines(f"{a},{d}\n" for a, d in zip(rtp.sent_at, rtp.delays, strict=True))
        s1, k1 = proc_sample(sw.proc.pid), sys_cpu(sw.proc.pid)
        res.switch_cpu = cpu_percent(s0, s1)[0]
        res.switch_sys = 100 * (k1 - k0) / max(s1.at - s0.at, 1e-9)
        res.rss_bridged_kb = s1.rss_kb

        # 5. Hang up (caller BYE), wait for the switch to BYE every callee.
        t0 = time.monotonic()
        for i, caller in enumerate(callers):
            await asyncio.sleep(max(0.0, t0 + i / (2 * args.rate) - time.monotonic()))
            if caller.final.done() and caller.final.result() == 200:
                caller.bye()
        await asyncio.wait([c.bye_ok for c in callers], timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum(c.byes for c in callees) < res.bridged + 1:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        res.rss_after_kb = proc_sample(sw.proc.pid).rss_kb
        if sw.proc.poll() is not None:
            res.notes.append(f"switch exited {sw.proc.returncode}")
    finally:
        await rtp.stop()
        for t in [p.transport for p in callees] + [c.transport for c in callers]:
            if t is not None:
                t.close()
        if sw is not None:
            sw.stop()
        if res.notes:  # keep the switch's log for a look
            res.notes.append(f"switch log: {dir / 'pbx.log'}")
        else:
            shutil.rmtree(dir, ignore_errors=True)
    return res


# --- report ---------------------------------------------------------------------------------

def _f(x: float, digits: int = 2) -> str:
    return "nan" if x != x else f"{x:.{digits}f}"


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(f"\nbridged calls, RTP both ways (20 ms PCMU), window {args.window:g} s "
          f"(direct {args.baseline_window:g} s), {os.cpu_count()} cores, ramp {args.rate:g} calls/s")
    print(f"goal: >= {GOAL_CALLS} bridged with relay-added p99 < {GOAL_P99_MS:g} ms")
    cols = ("N", "bridged", "direct p50/p99 ms", "switch p50/p99/max ms", "added p50/p99 ms",
            "lost/sent", "wrong", "rcvbuf", "switch CPU% (sys)", "CPU%/call", "gen CPU% (direct)",
            "gen late p99", "others CPU% (softirq, steal)", "RSS idle MB", "KB/call", "RSS after MB")
    rows = []
    for r in results:
        d, s = r.direct, r.switched
        if d is None or s is None:
            rows.append((str(r.n), str(r.bridged), *["-"] * (len(cols) - 2)))
            continue
        per_call = r.switch_cpu / r.bridged if r.bridged else float("nan")
        kb = (r.rss_bridged_kb - r.rss_idle_kb) / r.bridged if r.bridged else float("nan")
        rows.append((
            str(r.n), f"{r.bridged}/{r.n}", f"{_f(d.p50_ms, 3)}/{_f(d.p99_ms, 3)}",
            f"{_f(s.p50_ms)}/{_f(s.p99_ms)}/{_f(s.max_ms, 1)}",
            f"{_f(s.p50_ms - d.p50_ms)}/{_f(s.p99_ms - d.p99_ms)}",
            f"{s.lost}/{s.sent}", str(s.misrouted), str(s.rcvbuf_drops),
            f"{_f(r.switch_cpu, 1)} ({_f(r.switch_sys, 1)})", _f(per_call, 3), f"{_f(s.gen_cpu, 1)} ({_f(d.gen_cpu, 1)})",
            f"{_f(s.gen_late_p99_ms, 1)} ms", f"{_f(s.machine_cpu - r.switch_cpu - s.gen_cpu, 0)} ({_f(s.softirq_cpu, 0)}, {_f(s.steal_cpu, 0)})",
            _f(r.rss_idle_kb / 1024, 1), _f(kb, 1),
            _f(r.rss_after_kb / 1024, 1)))
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    for r in results:
        for note in r.notes:
            print(f"N={r.n}: {note}")
    met = [r for r in results if r.n >= GOAL_CALLS and r.bridged >= GOAL_CALLS
           and r.direct and r.switched and r.switched.lost == 0
           and r.switched.p99_ms - r.direct.p99_ms < GOAL_P99_MS]
    print("goal " + ("met at N=" + ",".join(str(r.n) for r in met) if met else "not met"
                     + ("" if any(r.n >= GOAL_CALLS for r in results) else
                        f" (no run with N >= {GOAL_CALLS})")))
    print("columns: lost = measured packets never received; wrong = delivered to another call; "
          "rcvbuf = system-wide UDP receive-buffer drops in the window; CPU% = utime+stime, 100 = "
          "one core; gen = this load generator (all 2N legs); gen late = its pacing timer's "
          "lateness p99; others = the rest of the machine's busy time (out of 200), of which softirq (loopback delivery) and hypervisor steal; KB/call = (RSS bridged - RSS idle) / bridged; RSS after = all hung up.")


async def amain(args: argparse.Namespace) -> None:
    results = []
    load0 = os.getloadavg()[0]
    for n in args.n:
        t0 = time.monotonic()
        print(f"N={n}: running...", flush=True)
        results.append(await run_n(n, args))
        print(f"N={n}: done in {time.monotonic() - t0:.0f} s", flush=True)
    report(results, args)
    print(f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=lambda s: [int(x) for x in s.split(",")], default=[100, 250, 500],
                    help="concurrent bridged calls per run, comma-separated (default 100,250,500)")
    ap.add_argument("--window", type=float, default=10.0, help="measurement window, s")
    ap.add_argument("--baseline-window", type=float, default=5.0, help="direct baseline window, s")
    ap.add_argument("--rate", type=float, default=50.0, help="call set-up rate, calls/s")
    ap.add_argument("--settle", type=float, default=1.0, help="pause after the ramp, s")
    ap.add_argument("--slots", type=int, default=10, help="send phases per 20 ms period")
    ap.add_argument("--dump", metavar="PREFIX",
                    help="write each measured packet's send time and delay to PREFIX-N.csv")
    args = ap.parse_args()
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
