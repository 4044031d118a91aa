"""baresip 1.0.0 (Debian 12 `baresip-core`) as a real softphone in tests, headless.

Each `Baresip` gets its own config directory (docs/peers.md, "baresip"): SIP on a free
loopback port (`net_interface 127.0.0.1`, or it puts eth0's address in Contact and SDP), no sound
card (`audio_player aubridge,nil`; the microphone is a WAV through `aufile`), both directions recorded by `sndfile` into `snd_path` as
`dump-<time>-enc.wav` (what it sent) and `-dec.wav` (what it heard), and a JSON control socket
(`ctrl_tcp`, netstring framed: `<len>:<json>,`).  `-t` makes baresip quit on its own after
`lifetime` seconds, whatever happens to the test; `stop()` ends it by pid.

Commands go as `{"command": NAME, "params": TEXT, "token": N}`; baresip answers
`{"response": true, "ok": ..., "data": TEXT, "token": N}` and sends events such as
`{"event": true, "type": "CALL_ESTABLISHED", "param": ...}` on the same socket at any time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

from tests.integration.switch_harness import free_port, free_rtp_range

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")


def _config(*, sip_port: int, ctrl_port: int, rtp: tuple[int, int], rec: Path,
            source: str) -> str:
    return "\n".join([
        "poll_method\t\tepoll",
        f"sip_listen\t\t127.0.0.1:{sip_port}",
        "net_interface\t\t127.0.0.1",
        "dns_server\t\t127.0.0.1:53",  # never asked: every address here is an IP literal
        "audio_player\t\taubridge,nil",
        f"audio_source\t\t{source}",
        "audio_alert\t\taubridge,nil",
        "audio_srate\t\t8000",
        "audio_channels\t\t1",
        f"rtp_ports\t\t{rtp[0]}-{rtp[1]}",
        "rtp_timeout\t\t0",
        f"module_path\t\t{MODULES}",
        "module\t\t\tg711.so",
        "module\t\t\taufile.so",
        "module\t\t\tausine.so",
        "module\t\t\taubridge.so",
        "module\t\t\tsndfile.so",
        "module\t\t\tctrl_tcp.so",
        "module_app\t\taccount.so",
        "module_app\t\tmenu.so",
        f"ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}",
        f"snd_path\t\t{rec}",
        "",
    ])


class Baresip:
    """One baresip process registered as `user` at the switch on `pbx_port`."""

    def __init__(self, dir: Path, *, user: str, password: str, pbx_port: int,
                 transport: str = "udp", wav: Path | None = None,
                 answer: str = "auto", lifetime: int = 60, regint: int = 600) -> None:
        assert BARESIP, "baresip is missing: apt-get install baresip-core (.ci/bootstrap.sh)"
        self.dir = dir
        self.user = user
        self.pbx_port = pbx_port
        self.transport = transport
        dir.mkdir(parents=True, exist_ok=True)
        self.rec = dir / "rec"
        self.rec.mkdir(exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        # The microphone is always a WAV (aufile), silence by default: baresip sends RFC 4733
        # events from its audio transmit loop, which runs only while the source delivers
        # frames.  (ausine would be simpler but supports only 48 kHz, and audio_srate must be
        # 8000 for G.711 without resampling.)
        if wav is None:
            wav = _silence(dir / "silence.wav", lifetime)
        source = f"aufile,{wav}"
        (dir / "config").write_text(_config(sip_port=self.sip_port, ctrl_port=self.ctrl_port,
                                            rtp=free_rtp_range(20), rec=self.rec,
                                            source=source))
        outbound = f"sip:127.0.0.1:{pbx_port};transport={transport}"
        (dir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1;transport={transport}>;auth_pass={password};"
            f"answermode={answer};audio_codecs=PCMU/8000/1;regint={regint};"
            f'outbound="{outbound}"\n')
        self.log = dir / "baresip.log"
        self.events: list[dict[str, Any]] = []
        self._tokens = itertools.count(1)
        self._buf = b""
        self._sock: socket.socket | None = None
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [BARESIP, "-f", str(dir), "-t", str(lifetime)], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._connect(timeout=10)

    # -- control socket -------------------------------------------------------------------

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baresip exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"baresip ctrl_tcp did not listen in {timeout}s:\n{self.log_text()}")

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """One JSON message from the control socket, or None when `timeout` passes first."""
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        while True:
            head, colon, rest = self._buf.partition(b":")
            if colon and head.isdigit() and len(rest) > int(head):
                size = int(head)
                body, self._buf = rest[:size], rest[size + 1:]  # skip the trailing ","
                message: dict[str, Any] = json.loads(body)
                return message
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise RuntimeError(f"baresip closed its control socket:\n{self.log_text()}")
            self._buf += chunk

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run one command; events arriving meanwhile are kept in `events`."""
        assert self._sock is not None
        token = str(next(self._tokens))
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._read(deadline - time.monotonic())
            if msg is None:
                break
            if msg.get("event"):
                self.events.append(msg)
            elif msg.get("token") == token:
                return msg
        raise TimeoutError(f"baresip did not answer {name!r} in {timeout}s:\n{self.log_text()}")

    def wait_event(self, kind: str, timeout: float = 10.0, after: int = 0) -> dict[str, Any] | None:
        """The first event of this type (from index `after` in `events`), waiting if needed."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((e for e in self.events[after:] if e.get("type") == kind), None)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            msg = self._read(left)
            if msg is not None and msg.get("event"):
                self.events.append(msg)

    def pump(self, seconds: float) -> None:
        """Collect events for a while (the calls go on meanwhile)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            msg = self._read(left)
            if msg is not None and msg.get("event"):
                self.events.append(msg)

    # -- what a test does -----------------------------------------------------------------

    def registered(self, timeout: float = 10.0) -> bool:
        """Ask `reginfo` until the account shows OK (REGISTER_OK may fire before we connect)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = str(self.command("reginfo").get("data", ""))
            if "OK" in data and self.user in data:
                return True
            self.pump(0.2)
        return False

    def dial(self, target: str) -> None:
        # No ;transport here: baresip adds its account's own (it would come out twice).
        self.command("dial", f"sip:{target}@127.0.0.1:{self.pbx_port}")

    def send_digits(self, digits: str, gap: float = 0.35) -> None:
        """RFC 4733 events (baresip's `sndcode` sends one digit per command)."""
        for digit in digits:
            self.command("sndcode", digit)
            self.pump(gap)

    def recordings(self) -> dict[str, Path]:
        """{"enc": what it sent, "dec": what it heard} of its last call (sndfile)."""
        out: dict[str, Path] = {}
        for path in sorted(self.rec.glob("dump-*.wav")):
            out["enc" if path.stem.endswith("-enc") else "dec"] = path
        return out

    def log_text(self) -> str:
        """baresip's output without the call status line it rewrites a few times a second."""
        if not self.log.exists():
            return ""
        lines = self.log.read_text(errors="replace").replace("\r", "\n").splitlines()
        return "\n".join(x for x in lines if x.strip() and not x.startswith("[0:"))

    def stop(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            if self.proc.poll() is None and self._sock is not None:
                self.command("quit", timeout=2)
        if self._sock is not None:
            self._sock.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _silence(path: Path, seconds: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * seconds)
    return path
