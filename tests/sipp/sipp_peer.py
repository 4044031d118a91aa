"""Drive SIPp (the Debian `sip-tester` package) and a Python RTP sink from pytest.

`run_sipp` runs one scenario from this directory against a switch on 127.0.0.1, bounded in time
(`-m`, `-timeout`, `-timeout_error`, a subprocess deadline) and with every SIPp log written into a
work directory, so a failing test can show what SIPp saw. `RtpSink` is a UDP socket a scenario's
SDP points at (`-key sink_port N` fills `[sink_port]`): it records every RTP packet the switch
sends, so tests assert on the audio itself, not only on signalling. SIPp's own media port (`-mp`)
still sends the DTMF (`play_dtmf`); the switch accepts DTMF from any source and latches its send
address only on audio packets (pbxcore/media/session.py), so the prompt keeps flowing to the sink.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pbxcore.rtp.g711 import ulaw_decode

SCENARIOS = Path(__file__).resolve().parent
SIPP = shutil.which("sipp") or "/usr/bin/sipp"


@dataclass
class SippResult:
    """What one SIPp run left behind."""

    rc: int  # 0 all calls succeeded, 1 a call failed, 255 timeout or fatal error
    call_id: str  # the SIP Call-ID SIPp used (one call per run)
    work: Path  # directory holding SIPp's logs
    stdout: str
    stderr: str

    def logs(self) -> str:
        """Errors, the last screen and the message trace, for assertion messages."""
        parts = [f"sipp rc={self.rc}", self.stdout[-2000:], self.stderr[-2000:]]
        for name in ("errors.log", "screen.log", "messages.log"):
            path = self.work / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)

    def messages(self) -> str:
        path = self.work / "messages.log"
        return path.read_text(errors="replace") if path.exists() else ""


def run_sipp(scenario: str, port: int, work: Path, *, service: str, transport: str = "u1",
             user: str | None = None, password: str | None = None,
             keys: dict[str, str] | None = None, timeout: float = 20,
             local_port: int | None = None, media_port: int | None = None) -> SippResult:
    """Run tests/sipp/<scenario> once (one call) against 127.0.0.1:<port>; return its result.

    The process is started in its own session and killed by pid if it outlives `timeout` + 5 s.
    """
    from tests.integration.switch_harness import free_port

    work.mkdir(parents=True, exist_ok=True)
    pinned = local_port is not None and media_port is not None
    for _attempt in range(3):
        call_id = f"sipp-{uuid.uuid4().hex[:16]}"
        cmd = [
            SIPP, f"127.0.0.1:{port}", "-sf", str(SCENARIOS / scenario), "-s", service,
            "-t", transport, "-i", "127.0.0.1", "-mi", "127.0.0.1",
            "-p", str(local_port or free_port()),
            "-mp", str(media_port or (free_port(both=False) // 2) * 2),
            "-m", "1", "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin",
            "-cid_str", f"{call_id}", "-max_recv_loops", "100",
            "-trace_err", "-error_file", str(work / "errors.log"),
            "-trace_screen", "-screen_file", str(work / "screen.log"),
            "-trace_msg", "-message_file", str(work / "messages.log"),
        ]
        if user is not None:
            cmd += ["-au", user, "-ap", password or ""]
        for name, value in (keys or {}).items():
            cmd += ["-key", name, value]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=work, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout + 5)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate(timeout=5)
        # 254: SIPp could not bind a port another process took after we picked it; a port we
        # did not pin is picked again (a pinned one is the caller's to retry).
        if proc.returncode != 254 or pinned:
            break
    return SippResult(proc.returncode, call_id, work, out.decode(errors="replace"),
                      err.decode(errors="replace"))


@dataclass
class RtpPacket:
    pt: int
    marker: bool
    seq: int
    ts: int
    ssrc: int
    payload: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class RtpSink:
    """A UDP socket on 127.0.0.1 that keeps every RTP packet sent to it (in a daemon thread)."""

    sock: socket.socket = field(init=False)
    packets: list[RtpPacket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # An even port (RTP convention, RFC 3550 §11); the odd one above it is not needed.
        for _ in range(100):
            try:
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1] & ~1
                probe.close()
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        self.sock.settimeout(0.05)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def __enter__(self) -> RtpSink:
        self._thread = threading.Thread(target=self._run, name="rtp-sink", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
            start = 12 + 4 * (b0 & 0x0F)
            self.packets.append(RtpPacket(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc,
                                          data[start:], time.monotonic()))

    def pcmu(self) -> list[RtpPacket]:
        return [p for p in self.packets if p.pt == 0]

    def wait_packets(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while len(self.pcmu()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.pcmu())


def rms16(pcm16le: bytes) -> float:
    """Root mean square of 16-bit little-endian samples (0 for no samples)."""
    count = len(pcm16le) // 2
    if not count:
        return 0.0
    samples = struct.unpack(f"<{count}h", pcm16le[: 2 * count])
    return math.sqrt(sum(s * s for s in samples) / count)


def pcmu_rms(packets: list[RtpPacket]) -> float:
    return rms16(ulaw_decode(b"".join(p.payload for p in packets)))


def wav_to_pcap(wav: Path, pcap: Path) -> int:
    """An 8 kHz mono s16 WAV as a PCMU RTP pcap for SIPp's play_pcap_audio (docs/peers.md 2, pitfall
    4); returns the number of RTP packets.  Generated at test time: no binaries in the repo."""
    import random
    import wave

    from pbxcore.rtp.g711 import ulaw_encode

    with wave.open(str(wav)) as w:
        ulaw = ulaw_encode(w.readframes(w.getnframes()))
    seq, ts, ssrc = random.randint(0, 9999), random.randint(0, 1 << 30), random.getrandbits(32)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # Ethernet link type
    count = 0
    for n, i in enumerate(range(0, len(ulaw), 160)):
        rtp = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0, (seq + n) & 0xFFFF,
                          (ts + 160 * n) & 0xFFFFFFFF, ssrc) + ulaw[i:i + 160].ljust(160, b"\xff")
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                         b"\x7f\0\0\1", b"\x7f\0\0\1") + udp
        frame = b"\0" * 12 + b"\x08\x00" + ip
        t = n * 0.02
        out.append(struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)), len(frame),
                               len(frame)) + frame)
        count += 1
    pcap.write_bytes(b"".join(out))
    return count
