"""Start a real `pbx run` on free loopback ports with a config written for the test, and talk to
it with raw SIP over UDP/TCP.  Every process started here is stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_DGRAM, both: bool = True) -> int:
    """A port free for UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            if not both:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def free_rtp_range(size: int = 40) -> tuple[int, int]:
    """An even-aligned port range nobody listens on right now (bounded tries)."""
    for _ in range(200):
        base = (free_port(both=False) // 2) * 2
        if base + size < 65000:
            return base, base + size - 1
    raise RuntimeError("no free RTP range")


@dataclass
class SwitchProcess:
    """A `pbx run` child process and what a test needs to reach it."""

    dir: Path
    config: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    users: dict[str, str] = field(default_factory=dict)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def pbx(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pbxcore", *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=timeout, cwd=REPO,
        )


def write_config(dir: Path, *, port: int, routes: str, rtp: tuple[int, int] | None = None,
                 users: dict[str, str] | None = None, extra: str = "",
                 scripts: Path | None = None) -> Path:
    users = users or {"1001": "secret1001", "1002": "secret1002"}
    low, high = rtp or free_rtp_range()
    user_tables = "\n".join(
        f'[[users]]\nextension = "{ext}"\npassword = "{pw}"\n' for ext, pw in users.items()
    )
    text = textwrap.dedent(f"""\
        [sip]
        listen = ["udp:127.0.0.1:{port}", "tcp:127.0.0.1:{port}"]
        realm = "pbxcore-test"
        [media]
        rtp_ports = "{low}-{high}"
        host = "127.0.0.1"
        [paths]
        scripts = "{scripts or REPO / 'scripts'}"
        sounds = "{REPO / 'sounds'}"
        recordings = "var/recordings"
        [store]
        dsn = "sqlite:///var/pbx.db"
        """) + extra + "\n" + user_tables + "\n" + textwrap.dedent(routes)
    path = dir / "pbx.toml"
    path.write_text(text)
    return path


def start_switch(dir: Path, config: Path, port: int, timeout: float = 20,
                 args: tuple[str, ...] = ()) -> SwitchProcess:
    log = dir / "pbx.log"
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "pbxcore", "run", "--config", str(config), *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
        )
    sw = SwitchProcess(dir, config, port, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pbx run exited {proc.returncode}:\n{sw.log_text()}")
        if options_ping(port, timeout=0.3):
            return sw
    sw.stop()
    raise RuntimeError(f"pbx run did not answer OPTIONS within {timeout}s:\n{sw.log_text()}")


def options_ping(port: int, timeout: float = 1.0, transport: str = "udp") -> bool:
    reply = sip_exchange(port, options_request(port), timeout=timeout, transport=transport)
    return reply is not None and reply.startswith(b"SIP/2.0 200")


def options_request(port: int, local_port: int = 5999) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:12]
    return (
        f"OPTIONS sip:pbx@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch};rport\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:pbx@127.0.0.1:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@test\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def sip_exchange(port: int, data: bytes, *, timeout: float = 2.0, transport: str = "udp",
                 expect: int = 1) -> bytes | None:
    """Send `data`, return the first final-looking reply (skipping 1xx), or None on timeout."""
    replies = sip_replies(port, data, timeout=timeout, transport=transport)
    finals = [r for r in replies if not r.startswith(b"SIP/2.0 1")]
    return finals[0] if finals else (replies[0] if replies else None)


def sip_replies(port: int, data: bytes, *, timeout: float = 2.0, transport: str = "udp",
                until_final: bool = True) -> list[bytes]:
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    out: list[bytes] = []
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(timeout)
        if transport == "udp":
            s.bind(("127.0.0.1", 0))
            s.sendto(data, ("127.0.0.1", port))
        else:
            s.connect(("127.0.0.1", port))
            s.sendall(data)
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65535)
            except TimeoutError:
                break
            if not chunk:
                break
            if transport == "udp":
                out.append(chunk)
            else:
                buf += chunk
                out = [m for m in buf.split(b"\r\n\r\n") if m.startswith(b"SIP/2.0")]
            if until_final and any(not r.startswith(b"SIP/2.0 1") for r in out):
                break
    return out
