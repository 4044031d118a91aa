"""Queues: N callers waiting on hold music with announcements while M agents answer and hang up.

    .venv/bin/python bench/bench_queue.py [--callers 200] [--agents 10] [--talk 2] \\
        [--patience 45] [--window 10] [--rate 50] [--ring 0.2] [--announce-every 10]

A fresh `pbx run` (bench/_harness.py) has one queue `bench` (longest-idle, wrapup 0, announcements
every --announce-every s over the stock hold music) whose members are M users 3000.., and one
public route whose /bin/sh script prints `queue bench`.

* Agents: M simulated phones in this process (raw SIP over UDP, one socket each): REGISTER with
  digest, logged in through the control socket (the `agent` command `pbx agent login` uses);
  on the switch's INVITE they send 180, answer with 200 + SDP after --ring s, "talk" for
  --talk s and send BYE.  A phone ringing or talking answers another INVITE 486 (no call
  waiting); one that has sent its BYE takes the new call.
* Callers: N raw UDP UACs (one SIP socket, a distinct From user each so the agent's INVITE says
  which caller it is) INVITE at --rate calls/s; the queue answers them.  A caller not connected
  to an agent --patience s after the queue answered hangs up (BYE): abandoned.  Every caller's
  SDP points at its own UDP socket in a child process that takes the kernel arrival time
  (SO_TIMESTAMPNS) of every RTP packet.
* Window: once every caller has arrived, --window s of measurement: packet spacing = time
  between consecutive packets of one waiting caller (hold music and announcements; packets
  after the caller was connected or hung up are not counted), the switch's CPU (utime+stime
  from /proc) and RSS, per waiting caller with the idle switch (agents registered, no caller)
  subtracted.
* Queue decision time, on the agent's side: from the 200 OK to the agent's BYE arriving (kernel
  time) to the next INVITE for that agent arriving, counted when at least M callers were waiting
  at that instant.  It includes the switch reading the BYE and ending the bridge, the model's
  call_ended -> Offer, opening the agent leg's RTP port, and the INVITE: SIP both ways on
  loopback.
* ASA = queue answered the caller (200 OK arrival) -> an agent's phone answered it (the agent's
  200 OK sent), over the callers connected; abandonment = abandoned / callers who entered.  The
  queue journal (`pbx journal --json`) gives ENTERQUEUE / CONNECT / ABANDON counts to compare.

Goals (issue 8): 1,000 callers waiting with packet spacing p99 < 30 ms; queue decisions < 5 ms
p99.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing as mp
import resource
import secrets
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    HOST,
    SO_TIMESTAMPNS,
    Leg,
    RawUac,
    RssSampler,
    bench_switch,
    cpu_percent,
    machine_busy,
    machine_note,
    machine_percent,
    pct,
    proc_sample,
    write_script,
)

from pbxcore.sip.digest import authorization_for  # noqa: E402

GOAL_SPACING_P99_MS = 30.0
GOAL_DECISION_P99_MS = 5.0
GOAL_CALLERS = 1000
STALL_MS = 250.0  # a gap this long in many streams at once: the switch's loop stood still
QUEUE = "bench"
FIRST_AGENT = 3000
SCRIPT = f"""#!/bin/sh
case $PBX_EVENT in
    incoming) echo 'queue {QUEUE}' ;;
    *) echo hangup ;;
esac
"""


# --- a tiny single-threaded event loop (selector + timers) --------------------------------------

class Loop:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, fn))

    def run(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        end = time.monotonic() + seconds
        while not until():
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                heapq.heappop(self._timers)[2]()
                now = time.monotonic()
            if now >= end:
                return
            nxt = self._timers[0][0] if self._timers else end
            for key, _ in self.sel.select(max(0.0, min(nxt, end) - now)):
                key.data()


def kernel_ns(anc: list[tuple[int, int, bytes]]) -> int:
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
            sec, nsec = struct.unpack("qq", raw[:16])
            return sec * 1_000_000_000 + nsec
    return time.time_ns()


@dataclass
class Sip:
    """One parsed SIP message (enough for a phone)."""

    first: str
    headers: dict[str, str]
    vias: list[str]
    body: str

    @classmethod
    def parse(cls, data: bytes) -> Sip:
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers: dict[str, str] = {}
        vias: list[str] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            key = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact"}.get(key, key)
            if key == "via":
                vias.append(value.strip())
            headers.setdefault(key, value.strip())
        return cls(lines[0], headers, vias, body)

    @property
    def is_request(self) -> bool:
        return not self.first.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0] if self.is_request else \
            self.headers.get("cseq", " ").split()[-1]

    @property
    def status(self) -> int:
        return 0 if self.is_request else int(self.first.split()[1])


def uri_of(value: str) -> str:
    return value.split("<", 1)[1].split(">", 1)[0] if "<" in value else value.split(";")[0]


def user_of(value: str) -> str:
    return uri_of(value).removeprefix("sip:").split("@", 1)[0]


# --- the agents' phones ----------------------------------------------------------------------

@dataclass
class Agent:
    ext: str
    sock: socket.socket
    rtp: socket.socket
    state: str = "idle"  # idle, ringing, talking, hanging_up
    gen: int = 0  # bumps on every new dialog: stale timers check it
    call_id: str = ""
    invite: Sip | None = None
    to_tag: str = ""
    remote: tuple[str, int] = (HOST, 0)
    free_ns: int | None = None  # 200 OK to our BYE arrived; waiting for the next INVITE
    waiting_at_free: int = 0
    answered: int = 0

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


class Agents:
    def __init__(self, bench: Bench, count: int) -> None:
        self.bench = bench
        self.list: list[Agent] = []
        for i in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.bind((HOST, 0))
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            r.bind((HOST, 0))
            self.list.append(Agent(str(FIRST_AGENT + i), s, r))
        self.decisions: list[tuple[int, float]] = []  # (INVITE arrival ns, ms)
        self.decision_misses = 0  # freed while callers waited, no INVITE within 5 s
        self.busy_invites = 0
        self.busy_states: Counter[str] = Counter()  # the phone's state when it said 486

    def register_all(self, switch_port: int) -> None:
        for a in self.list:
            status = register(a, switch_port)
            if status != 200:
                raise RuntimeError(f"REGISTER {a.ext}: {status}")
            a.sock.setblocking(False)
            self.bench.loop.sel.register(a.sock, selectors.EVENT_READ,
                                         lambda a=a: self._readable(a))

    def _readable(self, a: Agent) -> None:
        while True:
            try:
                data, anc, _, addr = a.sock.recvmsg(65535, 64)
            except BlockingIOError:
                return
            self._handle(a, Sip.parse(data), kernel_ns(anc), addr)

    def _send(self, a: Agent, text: str, addr: tuple[str, int]) -> None:
        a.sock.sendto(text.replace("\n", "\r\n").encode(), addr)

    def _reply(self, a: Agent, req: Sip, status: str, addr: tuple[str, int], *,
               tag: str = "", sdp: str = "") -> None:
        to = req.headers.get("to", "")
        if tag and "tag=" not in to:
            to += f";tag={tag}"
        lines = [f"SIP/2.0 {status}", *(f"Via: {v}" for v in req.vias),
                 f"From: {req.headers.get('from', '')}", f"To: {to}",
                 f"Call-ID: {req.headers.get('call-id', '')}",
                 f"CSeq: {req.headers.get('cseq', '')}",
                 f"Contact: <sip:{a.ext}@{HOST}:{a.port}>"]
        if sdp:
            lines.append("Content-Type: application/sdp")
        text = "\n".join(lines) + f"\nContent-Length: {len(sdp.encode())}\n\n"
        a.sock.sendto(text.replace("\n", "\r\n").encode() + sdp.encode(), addr)

    def _sdp(self, a: Agent) -> str:
        port = a.rtp.getsockname()[1]
        return (f"v=0\r\no={a.ext} 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")

    def _handle(self, a: Agent, msg: Sip, arrived: int, addr: tuple[str, int]) -> None:
        call_id = msg.headers.get("call-id", "")
        if not msg.is_request:
            if msg.method == "BYE" and call_id == a.call_id and msg.status >= 200:
                a.state = "idle"
                a.free_ns = arrived
                a.waiting_at_free = self.bench.waiting()
                gen = a.gen
                self.bench.loop.at(time.monotonic() + 5.0, lambda: self._missed(a, gen))
            return
        method = msg.method
        if method == "INVITE":
            if call_id == a.call_id and a.state != "idle":  # retransmission or re-INVITE
                if a.state == "ringing":
                    self._reply(a, msg, "180 Ringing", addr, tag=a.to_tag)
                else:
                    self._reply(a, msg, "200 OK", addr, tag=a.to_tag, sdp=self._sdp(a))
                return
            if a.state == "hanging_up":  # our BYE is out: the line is free for the phone
                self.busy_states["hanging_up (taken)"] += 1
            elif a.state != "idle":
                self.busy_invites += 1
                self.busy_states[a.state] += 1
                self._reply(a, msg, "486 Busy Here", addr, tag=secrets.token_hex(4))
                return
            if a.free_ns is not None and a.waiting_at_free >= len(self.list):
                self.decisions.append((arrived, (arrived - a.free_ns) / 1e6))
            a.free_ns = None
            a.gen += 1
            a.state, a.call_id, a.invite, a.remote = "ringing", call_id, msg, addr
            a.to_tag = secrets.token_hex(4)
            self._reply(a, msg, "180 Ringing", addr, tag=a.to_tag)
            gen = a.gen
            self.bench.loop.at(time.monotonic() + self.bench.args.ring,
                               lambda: self._answer(a, gen))
        elif method == "ACK":
            return
        elif method == "CANCEL":
            self._reply(a, msg, "200 OK", addr)
            if call_id == a.call_id and a.state == "ringing" and a.invite is not None:
                self._reply(a, a.invite, "487 Request Terminated", addr, tag=a.to_tag)
                a.state, a.gen = "idle", a.gen + 1
        elif method == "BYE":
            self._reply(a, msg, "200 OK", addr)
            if call_id == a.call_id:
                a.state, a.gen, a.free_ns = "idle", a.gen + 1, None
        else:
            self._reply(a, msg, "200 OK", addr)

    def _answer(self, a: Agent, gen: int) -> None:
        if a.gen != gen or a.state != "ringing" or a.invite is None:
            return
        self._reply(a, a.invite, "200 OK", a.remote, tag=a.to_tag, sdp=self._sdp(a))
        a.state = "talking"
        a.answered += 1
        self.bench.connected(user_of(a.invite.headers.get("from", "")), time.time_ns())
        self.bench.loop.at(time.monotonic() + self.bench.args.talk, lambda: self._bye(a, gen))

    def _bye(self, a: Agent, gen: int) -> None:
        if a.gen != gen or a.state != "talking" or a.invite is None:
            return
        inv = a.invite
        contact = uri_of(inv.headers.get("contact", "")) or f"sip:{HOST}:{a.remote[1]}"
        text = (f"BYE {contact} SIP/2.0\n"
                f"Via: SIP/2.0/UDP {HOST}:{a.port};branch=z9hG4bK{secrets.token_hex(8)};rport\n"
                f"From: {inv.headers.get('to', '')};tag={a.to_tag}\n"
                f"To: {inv.headers.get('from', '')}\nCall-ID: {a.call_id}\nCSeq: 1 BYE\n"
                "Max-Forwards: 70\nContent-Length: 0\n\n")
        a.state = "hanging_up"
        self._send(a, text, a.remote)

    def _missed(self, a: Agent, gen: int) -> None:
        if a.gen == gen and a.free_ns is not None and a.waiting_at_free >= len(self.list):
            self.decision_misses += 1


def register(a: Agent, switch_port: int) -> int:
    """REGISTER with digest (RFC 3261 §10.2, §22.2), blocking; the final status."""
    call_id, auth = secrets.token_hex(8), ""
    a.sock.settimeout(5.0)
    for cseq in (1, 2):
        lines = [f"REGISTER sip:{HOST}:{switch_port} SIP/2.0",
                 f"Via: SIP/2.0/UDP {HOST}:{a.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
                 f"From: <sip:{a.ext}@{HOST}>;tag={secrets.token_hex(4)}",
                 f"To: <sip:{a.ext}@{HOST}>", f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER",
                 f"Contact: <sip:{a.ext}@{HOST}:{a.port}>", "Expires: 3600", "Max-Forwards: 70"]
        if auth:
            lines.append(f"Authorization: {auth}")
        a.sock.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                      (HOST, switch_port))
        while True:
            msg = Sip.parse(a.sock.recv(65535))
            if not msg.is_request and msg.status >= 200:
                break
        if msg.status != 401:
            return msg.status
        auth = authorization_for(msg.headers["www-authenticate"], method="REGISTER",
                                 uri=f"sip:{HOST}:{switch_port}", username=a.ext,
                                 password=f"bench-{a.ext}", cnonce=secrets.token_hex(4))
    return 401


def control(sock_path: Path, cmd: str, args: dict[str, str]) -> dict[str, object]:
    """One request on the switch's control socket (docs/operations.md): the CLI's own path."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        s.sendall(json.dumps({"cmd": cmd, "args": args}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply: dict[str, object] = json.loads(buf)
    if not reply.get("ok"):
        raise RuntimeError(f"control {cmd}: {reply}")
    return reply


# --- the callers -----------------------------------------------------------------------------

class Callers(RawUac):
    """RawUac with a distinct From user per call (the agent's INVITE names the caller)."""

    def invite_as(self, user: str, called: str, rtp_port: int) -> Leg:
        leg = Leg(secrets.token_hex(10) + "@bench", called, secrets.token_hex(5), rtp_port,
                  invite_branch="z9hG4bK" + secrets.token_hex(8))
        sdp = (f"v=0\no={user} 1 1 IN IP4 {HOST}\ns=-\nc=IN IP4 {HOST}\nt=0 0\n"
               f"m=audio {rtp_port} RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\n"
               "a=rtpmap:101 telephone-event/8000\na=sendrecv\n").replace("\n", "\r\n")
        head = (f"INVITE sip:{called}@{HOST}:{self.remote[1]} SIP/2.0\n"
                f"{self._via(leg.invite_branch)}\n"
                f"From: <sip:{user}@{HOST}:{self.port}>;tag={leg.from_tag}\n"
                f"To: <sip:{called}@{HOST}:{self.remote[1]}>\n"
                f"Call-ID: {leg.call_id}\nCSeq: 1 INVITE\n"
                f"Contact: <sip:{user}@{HOST}:{self.port}>\nMax-Forwards: 70\n"
                f"Content-Type: application/sdp\nContent-Length: {len(sdp)}\n\n")
        self.legs[leg.call_id] = leg
        leg.invite_ns = time.time_ns()
        self.sock.sendto(head.replace("\n", "\r\n").encode() + sdp.encode(), self.remote)
        return leg


@dataclass
class Caller:
    index: int
    user: str
    leg: Leg
    connected_ns: int | None = None
    abandoned_ns: int | None = None

    @property
    def entered_ns(self) -> int | None:
        return self.leg.ok_ns

    @property
    def gone_ns(self) -> int | None:
        """When the caller stopped waiting (connected, hung up, or hung up on)."""
        ends = [t for t in (self.connected_ns, self.abandoned_ns, self.leg.bye_from_switch_ns)
                if t is not None]
        return min(ends) if ends else None


# --- the RTP sink (child process) ------------------------------------------------------------

def sink_main(n: int, conn: Connection) -> None:
    """N RTP sockets; kernel arrival times while recording; gaps before each stream's cutoff."""
    socks = []
    sel = selectors.DefaultSelector()
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        s.bind((HOST, 0))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks.append(s)
    sel.register(conn, selectors.EVENT_READ, -1)
    conn.send([s.getsockname()[1] for s in socks])
    recording = False
    arrivals: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    unpack = struct.Struct("qq").unpack_from
    while True:
        for key, _ in sel.select(1.0):
            if key.data == -1:
                cmd = conn.recv()
                if cmd == "start":
                    recording = True
                elif isinstance(cmd, tuple) and cmd[0] == "stop":
                    conn.send(_gaps(arrivals, cmd[1]))
                    return
                continue
            s, stream = socks[key.data], arrivals[key.data]
            while True:
                try:
                    data, anc, _, _ = s.recvmsg(512, 64)
                except BlockingIOError:
                    break
                if recording and anc and len(data) >= 12:
                    sec, nsec = unpack(anc[0][2])
                    stream.append((sec * 1_000_000_000 + nsec, (data[2] << 8) | data[3]))


def _gaps(arrivals: list[list[tuple[int, int]]], cutoffs: list[int | None]) -> dict[str, object]:
    pooled: list[float] = []
    per_p99: list[float] = []
    lost = received = streams = 0
    big: list[tuple[int, float]] = []  # (start ns, ms) of gaps > STALL_MS
    for stream, cutoff in zip(arrivals, cutoffs, strict=True):
        kept = [p for p in stream if cutoff is None or p[0] < cutoff]
        received += len(kept)
        if len(kept) < 2:
            continue
        streams += 1
        gaps = [(b[0] - a[0]) / 1e6 for a, b in zip(kept, kept[1:], strict=False)]
        big += [(a[0], g) for a, g in zip(kept, gaps, strict=False) if g > STALL_MS]
        pooled += gaps
        per_p99.append(pct(gaps, .99))
        expected = (kept[-1][1] - kept[0][1]) % 65536 + 1
        lost += max(0, expected - len(kept))
    return {"received": received, "streams": streams, "lost": lost, "gaps": len(pooled),
            "p50": pct(pooled, .5), "p99": pct(pooled, .99), "p999": pct(pooled, .999),
            "max": max(pooled, default=float("nan")),
            "worst_stream_p99": max(per_p99, default=float("nan")), "stalls": _stalls(big)}


def _stalls(big: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Gaps > STALL_MS that began within 50 ms of each other on many streams are one stall of
    the switch's loop: (how many streams had it, its longest gap in ms)."""
    out: list[tuple[int, float]] = []
    last = -1 << 62
    for start, ms in sorted(big):
        if start - last > 50_000_000:
            out.append((0, 0.0))
        n, longest = out[-1]
        out[-1] = (n + 1, max(longest, ms))
        last = start
    return out


# --- the run ---------------------------------------------------------------------------------

@dataclass
class Bench:
    args: argparse.Namespace
    loop: Loop = field(default_factory=Loop)
    callers: list[Caller] = field(default_factory=list)
    by_user: dict[str, Caller] = field(default_factory=dict)
    by_call: dict[str, Caller] = field(default_factory=dict)
    waiting_samples: list[int] = field(default_factory=list)

    def waiting(self) -> int:
        return sum(1 for c in self.callers if c.entered_ns is not None and c.gone_ns is None)

    def connected(self, user: str, now_ns: int) -> None:
        c = self.by_user.get(user)
        if c is not None and c.connected_ns is None and c.abandoned_ns is None:
            c.connected_ns = now_ns

    def entered(self, uac: Callers, leg: Leg) -> None:
        c = self.by_call.get(leg.call_id)
        if c is None:
            return
        self.loop.at(time.monotonic() + self.args.patience, lambda: self._patience(uac, c))

    def _patience(self, uac: Callers, c: Caller) -> None:
        if c.gone_ns is None:
            c.abandoned_ns = time.time_ns()
            uac.bye(c.leg)


def queue_toml(agents: int, announce_every: float) -> str:
    users = "".join(f'[[users]]\nextension = "{FIRST_AGENT + i}"\n'
                    f'password = "bench-{FIRST_AGENT + i}"\n' for i in range(agents))
    members = ", ".join(f'"{FIRST_AGENT + i}"' for i in range(agents))
    return (users + f'\n[[queues]]\nname = "{QUEUE}"\nstrategy = "longest-idle"\n'
            f"members = [{members}]\nring_timeout = 15\nretry = 1\nwrapup = 0\n"
            + (f"announce_every = {announce_every:g}\n" if announce_every > 0 else ""))


def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    n, m = args.callers, args.agents
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 3 * (n + m) + 200
    if soft < need:  # the switch (a child) inherits it: one RTP socket per caller and leg
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    sink = ctx.Process(target=sink_main, args=(n, child), daemon=True)
    sink.start()
    bench = Bench(args)
    try:
        ports: list[int] = parent.recv()
        script = write_script(tmp / "queue.sh", SCRIPT)
        with bench_switch(tmp, [("^1$", script)], rtp_size=4 * (n + m) + 200,
                          route_extra="hangup_event = false\n",
                          extra=queue_toml(m, args.announce_every)) as sw:
            agents = Agents(bench, m)
            agents.register_all(sw.port)
            sock_path = tmp / "var" / "pbx.sock"
            for a in agents.list:
                control(sock_path, "agent", {"op": "login", "extension": a.ext})
            uac = Callers(sw.port)
            uac.on_ok = lambda leg: bench.entered(uac, leg)
            bench.loop.sel.register(uac.sock, selectors.EVENT_READ, lambda: uac.poll(0))
            bench.loop.run(2.0)  # registrations seen by the ACD (polled once a second)
            idle_a = proc_sample(sw.pid)
            bench.loop.run(3.0)
            idle_b = proc_sample(sw.pid)
            idle_cpu, _ = cpu_percent(idle_a, idle_b)

            start = time.monotonic()
            for i in range(n):
                user = f"5{i:06d}"

                def call(i: int = i, user: str = user) -> None:
                    c = Caller(i, user, uac.invite_as(user, "1", ports[i]))
                    bench.callers.append(c)
                    bench.by_user[user] = c
                    bench.by_call[c.leg.call_id] = c
                bench.loop.at(start + i / args.rate, call)
            bench.loop.run(n / args.rate + 15, lambda: len(bench.callers) == n and all(
                c.leg.final is not None for c in bench.callers))
            bench.loop.run(1.0)
            entered = sum(1 for c in bench.callers if c.entered_ns is not None)

            def sample() -> None:
                bench.waiting_samples.append(bench.waiting())
                if time.monotonic() < window_end:
                    bench.loop.at(time.monotonic() + 0.5, sample)
            arrived_ns = time.time_ns()  # every caller has arrived (and their script ran)
            with open("/proc/loadavg") as f:
                load_in_window = f.read().split()[0]
            spy = None
            if args.profile:
                spy = subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(sw.pid), "--duration",
                                        str(int(args.window)), "--format", "raw", "--output",
                                        args.profile, "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with RssSampler(sw.pid) as rss:
                a, mach_a = proc_sample(sw.pid), machine_busy()
                window_end = time.monotonic() + args.window
                parent.send("start")
                sample()
                bench.loop.run(args.window)
                b, mach_b = proc_sample(sw.pid), machine_busy()
                parent.send(("stop", [c.gone_ns for c in bench.callers]))
                spacing: dict[str, object] = parent.recv()
            cpu, _ = cpu_percent(a, b)
            if spy is not None:
                spy.wait(30)
            # The rest of the run: agents serve, impatient callers hang up.
            bench.loop.run(args.patience + args.talk + 20,
                           lambda: all(c.gone_ns is not None or c.entered_ns is None
                                       for c in bench.callers) and
                           all(x.state == "idle" for x in agents.list))
            still = [c for c in bench.callers if c.entered_ns is not None and c.gone_ns is None]
            for c in still:
                uac.bye(c.leg)
            bench.loop.run(3.0)
            out = sw.proc.pbx("journal", "--queue", QUEUE, "--limit", "1000000", "--json",
                              timeout=120)
            journal: dict[str, int] = {}
            if out.returncode == 0:
                for row in json.loads(out.stdout):
                    journal[row["event"]] = journal.get(row["event"], 0) + 1
            uac.close()
    finally:
        if sink.is_alive():
            sink.kill()
        sink.join(5)
    connected = [c for c in bench.callers if c.connected_ns is not None and c.entered_ns]
    asa = [(c.connected_ns - c.entered_ns) / 1e9 for c in connected  # type: ignore[operator]
           if c.connected_ns is not None and c.entered_ns is not None]
    abandoned = sum(1 for c in bench.callers if c.abandoned_ns is not None)
    waiting = bench.waiting_samples or [0]
    avg_waiting = sum(waiting) / len(waiting)
    return {
        "n": n, "m": m, "entered": entered, "connected": len(connected), "abandoned": abandoned,
        "still_waiting": len(still), "asa": asa, "waiting_avg": avg_waiting,
        "waiting_min": min(waiting), "waiting_max": max(waiting), "cpu": cpu,
        "idle_cpu": idle_cpu, "rss_idle_kb": idle_b.rss_kb, "rss_max_kb": rss.max_kb,
        "spacing": spacing, "decisions": [ms for _, ms in agents.decisions],
        "steady": [ms for at, ms in agents.decisions if at > arrived_ns],
        "misses": agents.decision_misses,
        "busy_invites": agents.busy_invites, "busy_states": dict(agents.busy_states),
        "journal": journal,
        "machine": machine_percent(mach_a, mach_b), "load_in_window": load_in_window,
        "finals": dict(Counter(str(c.leg.final) for c in bench.callers)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--callers", type=int, default=200, help="callers (200)")
    ap.add_argument("--agents", type=int, default=10, help="agents (10)")
    ap.add_argument("--talk", type=float, default=2.0, help="seconds an agent talks (2)")
    ap.add_argument("--ring", type=float, default=0.2, help="seconds an agent's phone rings (0.2)")
    ap.add_argument("--patience", type=float, default=45.0,
                    help="seconds a caller waits before hanging up (45)")
    ap.add_argument("--window", type=float, default=10.0, help="measurement seconds (10)")
    ap.add_argument("--rate", type=float, default=50.0, help="callers arriving per second (50)")
    ap.add_argument("--profile", metavar="FILE",
                    help="py-spy record the switch during the window (raw collapsed stacks)")
    ap.add_argument("--keep", metavar="DIR",
                    help="run the switch in DIR (new) and keep it: pbx.toml, pbx.log, var/pbx.db")
    ap.add_argument("--announce-every", type=float, default=10.0,
                    help="queue announce_every, seconds (10; 0: no announcements)")
    args = ap.parse_args()
    print(f"queue bench: {args.callers} callers, {args.agents} agents, talk {args.talk:g} s, "
          f"ring {args.ring:g} s, patience {args.patience:g} s, window {args.window:g} s, "
          f"arrivals {args.rate:g}/s, announcements every {args.announce_every:g} s; "
          f"{time.strftime('%Y-%m-%d %H:%M')}, python {sys.version.split()[0]}")
    print(f"machine: {machine_note()}")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=False)
        r = run(args, Path(args.keep).resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="pbx-bq-") as tmp:
            r = run(args, Path(tmp))
    print(f"machine at the end: {machine_note()}")
    sp: dict[str, float] = r["spacing"]  # type: ignore[assignment]
    asa: list[float] = r["asa"]  # type: ignore[assignment]
    dec: list[float] = r["decisions"]  # type: ignore[assignment]
    steady: list[float] = r["steady"]  # type: ignore[assignment]
    waiting = float(r["waiting_avg"])  # type: ignore[arg-type]
    cpu, idle = float(r["cpu"]), float(r["idle_cpu"])  # type: ignore[arg-type]
    rss_per = (int(r["rss_max_kb"]) - int(r["rss_idle_kb"])) / max(waiting, 1)  # type: ignore[call-overload]
    entered = max(int(r["entered"]), 1)  # type: ignore[call-overload]
    print(f"\ncallers: {r['n']} called, {r['entered']} entered the queue, {r['connected']} "
          f"answered by an agent, {r['abandoned']} abandoned after {args.patience:g} s "
          f"({100 * int(r['abandoned']) / entered:.1f}%), {r['still_waiting']} still waiting "
          f"at the end (hung up by the bench)")  # type: ignore[call-overload]
    print(f"final answers to the callers' INVITEs: {json.dumps(r['finals'], sort_keys=True)}")
    print(f"journal: {json.dumps(r['journal'], sort_keys=True)}")
    print(f"ASA (queue answered -> agent answered): mean {sum(asa) / max(len(asa), 1):.2f} s, "
          f"p50 {pct(asa, .5):.2f} s, p99 {pct(asa, .99):.2f} s")
    print(f"waiting during the window: avg {waiting:.0f}, min {r['waiting_min']}, "
          f"max {r['waiting_max']} (load average {r['load_in_window']} as it began)")
    print(f"packet spacing of waiting callers: p50 {sp['p50']:.2f} ms, p99 {sp['p99']:.2f} ms, "
          f"p99.9 {sp['p999']:.1f} ms, max {sp['max']:.1f} ms, worst stream p99 "
          f"{sp['worst_stream_p99']:.2f} ms; {sp['streams']} streams, {sp['received']} packets, "
          f"{sp['lost']} lost   goal: p99 < {GOAL_SPACING_P99_MS:g} ms with "
          f"{GOAL_CALLERS} waiting")
    stalls: list[tuple[int, float]] = sp["stalls"]  # type: ignore[assignment]
    print(f"gaps > {STALL_MS:g} ms: {len(stalls)} bursts (streams hit, longest ms): "
          f"{', '.join(f'{n}/{ms:.0f}' for n, ms in stalls[:12]) or 'none'}")
    print(f"queue decision (agent's BYE answered -> next INVITE to it, >= {r['m']} waiting): "
          f"n={len(dec)}, p50 {pct(dec, .5):.2f} ms, p99 {pct(dec, .99):.2f} ms, max "
          f"{max(dec, default=float('nan')):.2f} ms; {r['misses']} freed agents got no INVITE "
          f"within 5 s   goal: p99 < {GOAL_DECISION_P99_MS:g} ms")
    print(f"  after every caller had arrived (no call set-ups, no script runs): n={len(steady)}, "
          f"p50 {pct(steady, .5):.2f} ms, p99 {pct(steady, .99):.2f} ms, max "
          f"{max(steady, default=float('nan')):.2f} ms")
    print(f"switch CPU: {cpu:.1f}% of a core in the window (idle, agents registered: "
          f"{idle:.1f}%) -> {(cpu - idle) / max(waiting, 1):.3f}% of a core per waiting caller; "
          f"RSS {int(r['rss_idle_kb']) / 1024:.1f} MB idle, {int(r['rss_max_kb']) / 1024:.1f} MB "
          f"max -> {rss_per:.1f} KB per waiting caller; whole machine {r['machine']:.0f}% busy")  # type: ignore[call-overload]
    if r["busy_invites"]:
        print(f"note: {r['busy_invites']} INVITEs reached an agent already on a call (486); the "
              f"phone was then: {json.dumps(r['busy_states'], sort_keys=True)}")


if __name__ == "__main__":
    main()
