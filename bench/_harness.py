"""Shared helpers for the switch benchmarks: a temp switch, process stats, a raw SIP UAC.

Everything here runs on 127.0.0.1 only.  The switch is started with the test suite's own
`start_switch` (tests/integration/switch_harness.py) and stopped by pid; the UAC is a plain UDP
socket with SO_TIMESTAMPNS, so reply times are the kernel's arrival times, not the moment this
(single-threaded) process got round to reading them.
"""

from __future__ import annotations

import array
import math
import os
import secrets
import selectors
import shutil
import socket
import struct
import sys
import textwrap
import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from switch_harness import (  # noqa: E402  (tests/integration/switch_harness.py)
    SwitchProcess,
    free_port,
    free_rtp_range,
    start_switch,
)

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)

__all__ = ["HOST", "REPO", "SIPP", "BenchSwitch", "Leg", "ProcSample", "RawUac", "RssSampler",
           "SwitchProcess", "bench_switch", "free_port", "free_rtp_range", "machine_busy", "machine_note", "machine_percent", "pct",
           "proc_sample", "write_script", "write_tone_wav"]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of values; nan when empty."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def machine_note() -> str:
    """Cores and load average: the benches share the machine, so print what else was running."""
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return f"{os.cpu_count()} cores, load average {' '.join(load)} (1/5/15 min)"


# --- files --------------------------------------------------------------------------------------

def write_script(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(0o755)
    return path


def write_tone_wav(path: Path, seconds: float, freq: float = 440.0) -> Path:
    """An 8 kHz mono s16 WAV (the format sounds/README.md asks for)."""
    n = int(8000 * seconds)
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * freq * i / 8000))
                                for i in range(n)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    return path


@dataclass
class BenchSwitch:
    """A running switch for a benchmark, and where its files are."""

    proc: SwitchProcess
    port: int
    dir: Path

    @property
    def pid(self) -> int:
        return int(self.proc.proc.pid)


@contextmanager
def bench_switch(dir: Path, routes: list[tuple[str, Path]], *, sounds: Path | None = None,
                 rtp_size: int = 1000, store: str = "sqlite:///var/pbx.db",
                 handler: str = "script", route_extra: str = "",
                 extra: str = "") -> Iterator[BenchSwitch]:
    """Start `pbx run` with public routes (match, program) and stop it (by pid) on exit.
    `handler`: "script" (a process per event) or "worker" (a persistent worker pool);
    `extra`: more TOML tables after the routes (`[limits]`, `[[users]]`, `[[queues]]`, ...)."""
    port = free_port()
    low, high = _free_rtp_block(rtp_size)
    route_text = "".join(
        f'[[routes]]\nmatch = "{match}"\n{handler} = "{script}"\npublic = true\ntimeout = 10\n'
        f'fallback = ["hangup"]\n{route_extra}\n' for match, script in routes)
    text = textwrap.dedent(f"""\
        [sip]
        listen = ["udp:{HOST}:{port}"]
        realm = "pbxcore-bench"
        [media]
        rtp_ports = "{low}-{high}"
        host = "{HOST}"
        [paths]
        scripts = "{dir}"
        sounds = "{sounds or REPO / 'sounds'}"
        recordings = "var/recordings"
        [store]
        dsn = "{store}"
        """) + "\n" + route_text + "\n" + extra
    config = dir / "pbx.toml"
    config.write_text(text)
    sw = start_switch(dir, config, port)
    try:
        yield BenchSwitch(sw, port, dir)
    finally:
        sw.stop()


def _free_rtp_block(size: int) -> tuple[int, int]:
    """An even-aligned block of `size` UDP ports of which a sample is free now."""
    for _ in range(200):
        base = (free_port(both=False) // 2) * 2
        if base + size >= 65000:
            base = 20000 + (base % 20000) // 2 * 2
        if base + size < 65000 and all(_udp_free(p) for p in range(base, base + size, 97)):
            return base, base + size - 1
    raise RuntimeError("no free RTP block")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


# --- process statistics ----------------------------------------------------------------------

@dataclass(frozen=True)
class ProcSample:
    """CPU seconds and memory of one process at one instant (from /proc)."""

    at: float  # time.monotonic()
    cpu: float  # utime + stime, seconds
    children_cpu: float  # cutime + cstime (reaped children: the scripts), seconds
    rss_kb: int  # VmRSS
    hwm_kb: int  # VmHWM (peak RSS so far)


def proc_sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return ProcSample(time.monotonic(), (utime + stime) / CLK_TCK,
                      (cutime + cstime) / CLK_TCK, rss, hwm)


def cpu_percent(a: ProcSample, b: ProcSample) -> tuple[float, float]:
    """(process CPU%, reaped-children CPU%) between two samples; 100% = one core."""
    dt = max(b.at - a.at, 1e-9)
    return 100 * (b.cpu - a.cpu) / dt, 100 * (b.children_cpu - a.children_cpu) / dt


def machine_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) of all CPUs from /proc/stat; see machine_percent."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


def machine_percent(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Busy % of the whole machine between two machine_busy() samples (100% = every core)."""
    return 100 * (b[0] - a[0]) / max(b[1] - a[1], 1.0)


class RssSampler:
    """Samples a process's VmRSS every `interval` s in a thread; `max_kb` over the window."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.max_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.max_kb = max(self.max_kb, proc_sample(self.pid).rss_kb)
            except OSError:
                return
            self._stop.wait(self.interval)


# --- a raw SIP UAC over UDP ------------------------------------------------------------------

@dataclass
class Leg:
    """One call as the UAC sees it; times are CLOCK_REALTIME nanoseconds."""

    call_id: str
    called: str
    from_tag: str
    rtp_port: int
    invite_ns: int = 0
    ringing_ns: int | None = None
    ok_ns: int | None = None  # first 200 OK to the INVITE (kernel arrival time)
    final: int | None = None  # final status of the INVITE
    to_tag: str = ""
    bye_from_switch_ns: int | None = None
    bye_ok: bool = False  # our BYE was answered
    ok_count: int = 0  # 200 OKs received for the INVITE (more than 1 = retransmitted)
    invite_branch: str = ""

    @property
    def setup_ms(self) -> float | None:
        return None if self.ok_ns is None else (self.ok_ns - self.invite_ns) / 1e6


class RawUac:
    """A minimal, single-threaded UDP UAC: INVITE with SDP, ACK the 2xx, answer or send BYE.

    Enough SIP for a benchmark, nothing more (RFC 3261 §17.1.1.3 ACK for 2xx is a new request
    with the dialog's tags; §15.1.2 BYE is answered with 200).
    """

    def __init__(self, switch_port: int) -> None:
        self.remote = (HOST, switch_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.legs: dict[str, Leg] = {}
        self.options: dict[str, list[int]] = {}  # Call-ID -> [sent_ns, reply_ns]
        self.on_ok: Callable[[Leg], None] | None = None

    def close(self) -> None:
        self.sel.close()
        self.sock.close()

    def _send(self, text: str) -> int:
        now = time.time_ns()
        self.sock.sendto(text.replace("\n", "\r\n").encode(), self.remote)
        return now

    def _via(self, branch: str) -> str:
        return f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport"

    def invite(self, called: str, rtp_port: int) -> Leg:
        leg = Leg(secrets.token_hex(10) + "@bench", called, secrets.token_hex(5), rtp_port,
                  invite_branch="z9hG4bK" + secrets.token_hex(8))
        sdp = (f"v=0\no=bench 1 1 IN IP4 {HOST}\ns=-\nc=IN IP4 {HOST}\nt=0 0\n"
               f"m=audio {rtp_port} RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\n"
               "a=rtpmap:101 telephone-event/8000\na=sendrecv\n").replace("\n", "\r\n")
        head = (f"INVITE sip:{called}@{HOST}:{self.remote[1]} SIP/2.0\n"
                f"{self._via(leg.invite_branch)}\n"
                f"From: <sip:bench@{HOST}:{self.port}>;tag={leg.from_tag}\n"
                f"To: <sip:{called}@{HOST}:{self.remote[1]}>\n"
                f"Call-ID: {leg.call_id}\nCSeq: 1 INVITE\n"
                f"Contact: <sip:bench@{HOST}:{self.port}>\nMax-Forwards: 70\n"
                f"Content-Type: application/sdp\nContent-Length: {len(sdp)}\n\n")
        self.legs[leg.call_id] = leg
        now = time.time_ns()
        self.sock.sendto(head.replace("\n", "\r\n").encode() + sdp.encode(), self.remote)
        leg.invite_ns = now
        return leg

    def options_ping(self) -> str:
        call_id = secrets.token_hex(10) + "@bench"
        sent = self._send(
            f"OPTIONS sip:pbx@{HOST}:{self.remote[1]} SIP/2.0\n"
            f"{self._via('z9hG4bK' + secrets.token_hex(8))}\n"
            f"From: <sip:bench@{HOST}:{self.port}>;tag={secrets.token_hex(4)}\n"
            f"To: <sip:pbx@{HOST}:{self.remote[1]}>\nCall-ID: {call_id}\n"
            "CSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n")
        self.options[call_id] = [sent]
        return call_id

    def _in_dialog(self, leg: Leg, method: str, cseq: int, branch: str) -> str:
        return (f"{method} sip:pbx@{self.remote[0]}:{self.remote[1]} SIP/2.0\n"
                f"{self._via(branch)}\n"
                f"From: <sip:bench@{HOST}:{self.port}>;tag={leg.from_tag}\n"
                f"To: <sip:{leg.called}@{HOST}:{self.remote[1]}>;tag={leg.to_tag}\n"
                f"Call-ID: {leg.call_id}\nCSeq: {cseq} {method}\nMax-Forwards: 70\n"
                "Content-Length: 0\n\n")

    def bye(self, leg: Leg) -> None:
        self._send(self._in_dialog(leg, "BYE", 2, "z9hG4bK" + secrets.token_hex(8)))

    def poll(self, timeout: float) -> None:
        """Handle everything that arrives within `timeout` seconds (returns early when idle)."""
        if not self.sel.select(max(timeout, 0)):
            return
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(65535, 64)
            except BlockingIOError:
                return
            arrived = time.time_ns()
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    arrived = sec * 1_000_000_000 + nsec
            self._handle(data, arrived)

    def _handle(self, data: bytes, arrived: int) -> None:
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        lines = head.split("\r\n")
        headers: dict[str, str] = {}
        vias: list[str] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            if key in ("via", "v"):
                vias.append(line)
            headers.setdefault(key, value.strip())
        call_id = headers.get("call-id", headers.get("i", ""))
        if lines[0].startswith("SIP/2.0 "):
            status = int(lines[0].split()[1])
            if call_id in self.options:
                self.options[call_id].append(arrived)
                return
            leg = self.legs.get(call_id)
            if leg is None or "INVITE" not in headers.get("cseq", ""):
                if leg is not None and "BYE" in headers.get("cseq", "") and status == 200:
                    leg.bye_ok = True
                return
            if status == 180 and leg.ringing_ns is None:
                leg.ringing_ns = arrived
            if status >= 200:
                to = headers.get("to", headers.get("t", ""))
                leg.to_tag = to.split("tag=", 1)[1].split(";")[0] if "tag=" in to else ""
                if leg.final is None:
                    leg.final = status
                if status == 200:
                    leg.ok_count += 1
                    if leg.ok_ns is None:
                        leg.ok_ns = arrived
                        if self.on_ok is not None:
                            self.on_ok(leg)
                    self._send(self._in_dialog(leg, "ACK", 1, "z9hG4bK" + secrets.token_hex(8)))
            return
        method = lines[0].split(" ", 1)[0]
        leg = self.legs.get(call_id)
        if method == "BYE" and leg is not None and leg.bye_from_switch_ns is None:
            leg.bye_from_switch_ns = arrived
        if method != "ACK":
            reply = ["SIP/2.0 200 OK", *vias]
            for key, name in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"),
                              ("cseq", "CSeq")):
                reply.append(f"{name}: {headers.get(key, '')}")
            self.sock.sendto(("\r\n".join(reply) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                             self.remote)


@dataclass
class StepTimer:
    """Fixed-rate schedule: `due(i)` is when the i-th event should happen (monotonic)."""

    rate: float
    start: float = field(default_factory=time.monotonic)

    def due(self, i: int) -> float:
        return self.start + i / self.rate
