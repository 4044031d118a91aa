"""Real peers as the callees of `dial` and `transfer`: SIPp UAS scenarios and pyVoIP agents.

A SIPp callee must be one of the switch's extensions (the route's `dial_allow` defaults to them),
so `SippCallee` first REGISTERs the extension from the very UDP port SIPp will listen on (the
switch sends the INVITE to the address the REGISTER came from), closes that socket and starts
SIPp in server mode on the port.  A pyVoIP agent (`Agent`) registers itself, auto-answers, plays a
tone and reports what it heard; it runs in a subprocess (pyVoIP's threads are not daemons,
docs/peers.md 1c): `python -m tests.peers.switching_helpers PLAN.json RESULT.json`.

Every process is started in its own session and stopped by its pid; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

USERS = {f"10{n:02d}": f"pw10{n:02d}" for n in range(1, 10)}  # 1001..1009


# ---------------------------------------------------------------- tones and their frequency


def tone_wav(path: Path, freq: float, seconds: float, amplitude: int = 8000) -> Path:
    """An 8 kHz mono s16 WAV holding one sine."""
    n = int(seconds * 8000)
    pcm = struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * freq * i / 8000))
                                  for i in range(n)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return path


def tone_pcap(path: Path, freq: float, seconds: float) -> int:
    """A PCMU RTP pcap of a sine for SIPp's play_pcap_audio; the number of packets."""
    from tests.sipp.sipp_peer import wav_to_pcap

    wav = tone_wav(path.with_suffix(".wav"), freq, seconds)
    return wav_to_pcap(wav, path)


def loud_stats(samples: list[int], rate: int = 8000, threshold: float = 500,
               frame: int = 160) -> tuple[int, float]:
    """(number of 20 ms frames louder than `threshold` RMS, frequency in Hz of those frames
    estimated from zero crossings).  A pure tone of F Hz crosses zero 2F times a second."""
    loud: list[list[int]] = []
    for i in range(0, len(samples) - frame + 1, frame):
        chunk = samples[i:i + frame]
        if math.sqrt(sum(s * s for s in chunk) / frame) > threshold:
            loud.append(chunk)
    crossings = sum(1 for c in loud for a, b in zip(c, c[1:], strict=False) if (a < 0) != (b < 0))
    seconds = sum(len(c) - 1 for c in loud) / rate
    return len(loud), (crossings / 2 / seconds if seconds else 0.0)


def frame_hz(samples: list[int], threshold: float = 500, frame: int = 160) -> list[float]:
    """The frequency (from zero crossings) of every 20 ms frame louder than `threshold` RMS."""
    out = []
    for i in range(0, len(samples) - frame + 1, frame):
        chunk = samples[i:i + frame]
        if math.sqrt(sum(x * x for x in chunk) / frame) > threshold:
            crossings = sum(1 for a, b in zip(chunk, chunk[1:], strict=False) if (a < 0) != (b < 0))
            out.append(crossings / 2 / ((frame - 1) / 8000))
    return out


def near(freqs: list[float], hz: float, tolerance: float = 0.08) -> int:
    """How many of `freqs` are within `tolerance` (relative) of `hz`."""
    return sum(1 for f in freqs if abs(f - hz) <= tolerance * hz)


def pcm16(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2]))


def stereo_channels(path: Path) -> tuple[list[int], list[int]]:
    """(left, right) samples of a 16-bit stereo WAV."""
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2), path
        samples = pcm16(w.readframes(w.getnframes()))
    return samples[0::2], samples[1::2]


# ---------------------------------------------------------------- the switch


@contextlib.contextmanager
def switch(dir: Path, routes: str) -> Iterator[Any]:
    """`pbx run` with users 1001..1007 and these routes; stopped by pid; log printed on exit."""
    from tests.integration.switch_harness import free_port, start_switch, write_config

    dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(dir, port=port, routes=textwrap.dedent(routes), users=USERS)
    sw = start_switch(dir, config, port)
    try:
        yield sw
    finally:
        sw.stop()
        print(f"--- pbx run log ({sw.log})\n{sw.log_text()[-12000:]}")


def register(switch_port: int, ext: str, sock: socket.socket, timeout: float = 5.0, *,
             contact_port: int | None = None, expires: int = 300) -> int:
    """REGISTER `ext` (digest) from `sock` (Contact: that port, or `contact_port`); the final
    status.  `expires=0` removes that one binding, as a phone switched off does."""
    from pbxcore.sip.digest import authorization_for
    from pbxcore.sip.message import Response, parse_message

    port = sock.getsockname()[1]
    contact = contact_port or port
    call_id, auth = secrets.token_hex(8), None
    sock.settimeout(0.2)
    for cseq in (1, 2):
        lines = [
            f"REGISTER sip:127.0.0.1:{switch_port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
            f"From: <sip:{ext}@127.0.0.1>;tag={secrets.token_hex(4)}",
            f"To: <sip:{ext}@127.0.0.1>", f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER",
            f"Contact: <sip:{ext}@127.0.0.1:{contact}>", f"Expires: {expires}",
            "Max-Forwards: 70",
        ] + ([f"Authorization: {auth}"] if auth else [])
        sock.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                    ("127.0.0.1", switch_port))
        deadline = time.monotonic() + timeout
        resp = None
        while resp is None and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                msg = parse_message(sock.recv(65535))
                if isinstance(msg, Response) and msg.status >= 200:
                    resp = msg
        assert resp is not None, f"no answer to REGISTER {ext}"
        if resp.status != 401:
            return resp.status
        auth = authorization_for(resp.headers.get_all("WWW-Authenticate")[0], method="REGISTER",
                                 uri=f"sip:127.0.0.1:{switch_port}", username=ext,
                                 password=USERS[ext], cnonce=secrets.token_hex(4))
    return 401


def free_block(size: int) -> int:
    """An even UDP port with the `size` - 1 ports above it free too (bounded tries)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1]) & ~1
        if base + size < 65535 and not any(_udp_port_taken(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of UDP ports")


def wait_rtp(rtp: Any, timeout: float = 5.0) -> None:
    """Drain a tests.integration.uac.RtpSink until the switch has sent it a packet."""
    deadline = time.monotonic() + timeout
    while rtp.remote is None and time.monotonic() < deadline:
        rtp.drain(0.05)
    assert rtp.remote is not None, f"no RTP from the switch within {timeout}s"


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# ---------------------------------------------------------------- SIPp as a callee


class SippCallee:
    """One SIPp UAS scenario (tests/sipp/<scenario>), registered as extension `ext` (or not
    registered at all when `ext` is None: then it is reached by its URI, `uri`)."""

    def __init__(self, scenario: str, switch_port: int, ext: str | None, work: Path, *,
                 keys: dict[str, str] | None = None, echo: bool = False,
                 timeout: float = 30, calls: int = 1) -> None:
        from tests.sipp.sipp_peer import SCENARIOS, SIPP

        self.ext, self.work, self.timeout = ext, work, timeout
        self.switch_port = switch_port
        self._unregistered = False
        work.mkdir(parents=True, exist_ok=True)
        self._reaped = False
        self.out = self.err = ""
        # Between closing our socket (which registered from the port) and SIPp's bind another
        # process may take the port (SIPp exits 254): register again from a fresh port.
        for attempt in range(3):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = int(sock.getsockname()[1])
                if ext is not None:
                    assert register(switch_port, ext, sock) == 200, f"REGISTER {ext} failed"
            self.uri = f"sip:callee@127.0.0.1:{self.port}"
            media = free_block(4)  # SIPp binds audio RTP/RTCP and video RTP/RTCP from -mp on
            cmd = [SIPP, "-sf", str(SCENARIOS / scenario), "-t", "u1",
                   "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(self.port),
                   "-mp", str(media),
                   "-m", str(calls), "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin",
                   "-max_recv_loops", "100", "-key", "switch_port", str(switch_port),
                   "-trace_err", "-error_file", str(work / "errors.log"),
                   "-trace_screen", "-screen_file", str(work / "screen.log"),
                   "-trace_msg", "-message_file", str(work / "messages.log")]
            if echo:
                cmd.append("-rtp_echo")
            for name, value in (keys or {}).items():
                cmd += ["-key", name, value]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, cwd=work, start_new_session=True)
            try:
                deadline = time.monotonic() + 5
                while not _udp_port_taken(self.port):
                    if self.proc.poll() == 254 and attempt < 2:
                        break  # could not bind: next attempt
                    assert self.proc.poll() is None, self.logs()
                    assert time.monotonic() < deadline, f"SIPp did not bind {self.port}"
                    time.sleep(0.02)
                else:
                    return
            except BaseException:
                self.stop()
                raise
            self.proc.communicate(timeout=5)
            self.unregister()  # that port's binding: SIPp never listened there
            self._unregistered = False

    def wait(self, timeout: float | None = None) -> int:
        """SIPp's exit status (0: the scenario ran to its end); killed by pid if it hangs."""
        if not self._reaped:
            try:
                out, err = self.proc.communicate(timeout=self.timeout + 5 if timeout is None
                                                 else timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                out, err = self.proc.communicate(timeout=5)
            self._reaped = True
            self.out, self.err = out.decode(errors="replace"), err.decode(errors="replace")
        return self.proc.returncode

    def stop(self) -> None:
        """Kill it (by pid) if it still runs, reap it, and remove its registration (the switch
        rings every registered phone of an extension: a stale binding would ring too)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait(5)
        self.unregister()

    def unregister(self) -> None:
        if self.ext is None or self._unregistered:
            return
        self._unregistered = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            with contextlib.suppress(AssertionError):  # the switch may be gone already
                register(self.switch_port, self.ext, sock, timeout=2, contact_port=self.port,
                         expires=0)

    def messages(self) -> str:
        path = self.work / "messages.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        if self.proc.poll() is not None:
            self.wait(5)
        parts = [f"--- SIPp callee {self.ext} rc={self.proc.returncode}", self.out[-1500:],
                 self.err[-1500:]]
        for name in ("errors.log", "screen.log", "messages.log"):
            path = self.work / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-5000:]}")
        return "\n".join(parts)


class Callees(contextlib.ExitStack):
    """Every SIPp callee started inside is stopped (by pid) on the way out."""

    def start(self, callee: SippCallee) -> SippCallee:
        self.callback(callee.stop)
        return callee


# ---------------------------------------------------------------- pyVoIP agent


class Agent:
    """A pyVoIP 1.6.8 phone registered as `ext` that answers every call, sends a tone and
    reports (per call) how many loud frames it heard and their frequency."""

    def __init__(self, switch_port: int, ext: str, work: Path, *, tone_hz: float = 1000,
                 tone_seconds: float = 8, lifetime: float = 60) -> None:
        from tests.integration.switch_harness import REPO, free_port, free_rtp_range

        work.mkdir(parents=True, exist_ok=True)
        self.work, self.result = work, work / "result.json"
        self.stop_file = work / "stop"
        low, high = free_rtp_range(20)
        plan = {"server_port": switch_port, "user": ext, "password": USERS[ext],
                "sip_port": free_port(both=False), "rtp_low": low, "rtp_high": high,
                "tone_hz": tone_hz, "tone_seconds": tone_seconds, "lifetime": lifetime,
                "stop_file": str(self.stop_file), "result": str(self.result)}
        (work / "plan.json").write_text(json.dumps(plan))
        self.log = open(work / "agent.log", "wb")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-m", "tests.peers.switching_helpers",
             str(work / "plan.json")],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
            start_new_session=True)
        self.lifetime = lifetime

    def report(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.result.read_text()))
        except (OSError, ValueError):
            return {}

    def wait_registered(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.report().get("registered"):
                return True
            time.sleep(0.1)
        return False

    def finish(self, timeout: float = 10) -> dict[str, Any]:
        self.stop_file.touch()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()
        return self.report()

    def log_text(self) -> str:
        path = self.work / "agent.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _tone_8bit(seconds: float, freq: float, amplitude: int = 6000) -> bytes:
    """pyVoIP's audio is 8-bit unsigned linear at 8 kHz (0x80 = silence, docs/peers.md 1b)."""
    return bytes(128 + int(amplitude * math.sin(2 * math.pi * freq * i / 8000)) // 256
                 for i in range(int(seconds * 8000)))


def agent_main(plan: dict[str, Any]) -> None:  # pragma: no cover - runs in the subprocess
    import threading

    import pyVoIP.VoIP as voip  # the first pyVoIP import must be pyVoIP.VoIP (docs/peers.md 1)

    result: dict[str, Any] = {"registered": False, "calls": [], "error": None}
    lock = threading.Lock()
    stop = Path(plan["stop_file"])

    def save() -> None:
        with lock:
            tmp = Path(plan["result"] + ".tmp")
            tmp.write_text(json.dumps(result))
            tmp.replace(plan["result"])

    def on_call(call: Any) -> None:  # pyVoIP's "Phone Call" thread, ~1 s after the INVITE
        entry: dict[str, Any] = {"answered": False, "ended_by_remote": False}
        result["calls"].append(entry)
        try:
            call.answer()
            entry["answered"] = True
            save()
            call.write_audio(_tone_8bit(plan["tone_seconds"], plan["tone_hz"]))
            answered, frames, heard = time.monotonic(), 0, bytearray()
            while time.monotonic() - answered < 30 and not stop.exists():
                if call.state != voip.CallState.ANSWERED:
                    entry["ended_by_remote"] = True
                    break
                # every 20 ms frame due by the wall clock, so the reader never falls behind
                while frames < (time.monotonic() - answered) / 0.02:
                    heard += call.read_audio(160, blocking=False)
                    frames += 1
                time.sleep(0.02)
            samples = [(b - 128) * 256 for b in heard]
            entry.update(frames=frames, hz=[round(f) for f in frame_hz(samples)],
                         seconds=round(time.monotonic() - answered, 2))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            entry["error"] = repr(exc)
        save()

    phone = voip.VoIPPhone(
        "127.0.0.1", plan["server_port"], plan["user"], plan["password"], myIP="127.0.0.1",
        callCallback=on_call, sipPort=plan["sip_port"], rtpPortLow=plan["rtp_low"],
        rtpPortHigh=plan["rtp_high"])
    phone.sip.register_timeout = 3
    phone.start()
    try:
        result["registered"] = phone.get_status() == voip.PhoneStatus.REGISTERED
        time.sleep(1.2)  # pyVoIP's receive thread starts 1 s after start() (docs/peers.md 1c)
        save()
        deadline = time.monotonic() + plan["lifetime"]
        while time.monotonic() < deadline and not stop.exists():
            time.sleep(0.05)
        time.sleep(0.2)  # let a call thread write its entry
    finally:
        save()
        phone.stop()


if __name__ == "__main__":  # pragma: no cover
    import traceback

    with open(sys.argv[1]) as f:
        PLAN = json.load(f)
    code = 0
    try:
        agent_main(PLAN)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
