"""One source floods the switch; how long does a second client wait for its answers?

    .venv/bin/python bench/bench_flood.py [--rate 4000] [--seconds 20] [--method REGISTER]
        [--probe-rate 50] [--modes off,limited]

For each mode a fresh `pbx run` is started: `off` with `[limits] requests_per_source = 0` (no
rate limit, what the switch did before issue 9), `limited` with the defaults (200 messages per
2 s per source) and `trusted = []` (loopback is trusted by default).  A child process bound to
127.0.0.3 sends unauthenticated REGISTERs (or OPTIONS) at RATE/s for SECONDS, each a new
transaction, and counts the replies; meanwhile a second client on 127.0.0.2 sends OPTIONS at
PROBE_RATE/s and times each answer with the kernel's receive timestamp (SO_TIMESTAMPNS).  A probe
not answered within 2 s counts as lost.  Printed per mode: the probe's latency p50/p99/max and
losses (idle first, then during the flood), the flood's replies by status, the switch's RSS
before/max/after and CPU, and the load average.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    SO_TIMESTAMPNS,
    RssSampler,
    bench_switch,
    cpu_percent,
    machine_note,
    pct,
    proc_sample,
    write_script,
)

FLOODER, PROBE = "127.0.0.3", "127.0.0.2"


def request(method: str, port: int, local: tuple[str, int]) -> bytes:
    tag, branch = secrets.token_hex(4), secrets.token_hex(8)
    user = "flood" if method == "REGISTER" else "probe"
    uri = f"sip:127.0.0.1:{port}" if method == "REGISTER" else f"sip:pbx@127.0.0.1:{port}"
    return (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{branch};rport\r\n"
            f"From: <sip:{user}@127.0.0.1>;tag={tag}\r\nTo: <sip:{user}@127.0.0.1>\r\n"
            f"Call-ID: {branch}@{local[0]}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:{user}@{local[0]}:{local[1]}>\r\nExpires: 60\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def flood_child(port: int, rate: float, seconds: float, method: str) -> None:
    """The flooder (a process of its own, so it does not share a GIL with the probe)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((FLOODER, 0))
    sock.setblocking(False)
    local = sock.getsockname()
    statuses: Counter[str] = Counter()
    sent = 0
    start = time.monotonic()
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * rate)
        while sent < due:
            try:
                sock.sendto(request(method, port, local), ("127.0.0.1", port))
            except BlockingIOError:
                break
            sent += 1
        _drain(sock, statuses)
        time.sleep(0.002)
    tail = time.monotonic() + 1.0
    while time.monotonic() < tail:
        _drain(sock, statuses)
        time.sleep(0.01)
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - start,
                      "replies": dict(statuses)}), flush=True)


def _drain(sock: socket.socket, statuses: Counter[str]) -> None:
    while True:
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            return
        statuses[data.split(b" ", 2)[1].decode(errors="replace")] += 1


class Probe:
    """The second client: OPTIONS at a fixed rate, latency from the kernel's timestamps."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((PROBE, 0))
        self.sock.setblocking(False)
        self.local = self.sock.getsockname()

    def run(self, seconds: float, rate: float) -> tuple[list[float], int]:
        """Latencies (ms) of the answered probes, and how many got no answer within 2 s."""
        sent: dict[bytes, int] = {}
        latencies: list[float] = []
        start = time.monotonic()
        n = 0
        while time.monotonic() < start + seconds + 2.0:
            now = time.monotonic()
            if now < start + seconds and n < int((now - start) * rate) + 1:
                data = request("OPTIONS", self.port, self.local)
                call_id = data.split(b"Call-ID: ", 1)[1].split(b"\r\n", 1)[0]
                sent[call_id] = time.time_ns()
                self.sock.sendto(data, ("127.0.0.1", self.port))
                n += 1
            self._receive(sent, latencies)
            time.sleep(0.001)
        return latencies, len(sent)

    def _receive(self, sent: dict[bytes, int], latencies: list[float]) -> None:
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
            if b"Call-ID: " not in data:
                continue
            call_id = data.split(b"Call-ID: ", 1)[1].split(b"\r\n", 1)[0]
            t0 = sent.pop(call_id, None)
            if t0 is not None:
                latencies.append((arrived - t0) / 1e6)

    def close(self) -> None:
        self.sock.close()


def fmt(latencies: list[float], lost: int) -> str:
    if not latencies:
        return f"no answers, {lost} lost"
    return (f"p50 {pct(latencies, 0.5):.2f} ms, p99 {pct(latencies, 0.99):.2f} ms, max "
            f"{max(latencies):.1f} ms, {len(latencies)} answered, {lost} lost")


def run_mode(mode: str, args: argparse.Namespace, tmp: Path) -> None:
    limits = ("[limits]\nrequests_per_source = 0\n" if mode == "off"
              else "[limits]\ntrusted = []\n")
    d = tmp / mode
    d.mkdir()
    script = write_script(d / "noop.sh", "#!/bin/sh\n")
    with bench_switch(d, [("^1$", script)], extra=limits) as sw:
        probe = Probe(sw.port)
        try:
            idle, idle_lost = probe.run(3.0, args.probe_rate)
            before = proc_sample(sw.pid)
            flood = subprocess.Popen(
                [sys.executable, __file__, "--flood-child", str(sw.port), str(args.rate),
                 str(args.seconds), args.method], stdout=subprocess.PIPE, start_new_session=True)
            try:
                with RssSampler(sw.pid) as rss:
                    busy, busy_lost = probe.run(args.seconds, args.probe_rate)
                    out, _ = flood.communicate(timeout=args.seconds + 30)
            finally:
                if flood.poll() is None:
                    os.killpg(flood.pid, signal.SIGKILL)
                    flood.wait(5)
            after = proc_sample(sw.pid)
            time.sleep(3.0)
            settled = proc_sample(sw.pid)
        finally:
            probe.close()
        result = json.loads(out.decode() or "{}")
        cpu, _ = cpu_percent(before, after)
        refused = [line for line in sw.proc.log_text().splitlines() if "rate limit:" in line]
    print(f"\n  mode {mode}: {'no rate limit' if mode == 'off' else 'default [limits]'}")
    print(f"    second client idle:         {fmt(idle, idle_lost)}")
    print(f"    second client during flood: {fmt(busy, busy_lost)}")
    sent = result.get("sent", 0)
    print(f"    flood: {sent} {args.method} in {result.get('seconds', 0):.1f} s "
          f"({sent / max(result.get('seconds', 1), 1e-9):.0f}/s); replies "
          f"{dict(sorted(result.get('replies', {}).items()))}")
    print(f"    switch RSS {before.rss_kb / 1024:.1f} MB before, {rss.max_kb / 1024:.1f} MB max, "
          f"{settled.rss_kb / 1024:.1f} MB 3 s after; CPU {cpu:.0f}% of a core during the "
          f"flood; {len(refused)} rate-limit log lines")
    print(f"    machine: {machine_note()}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--flood-child":
        flood_child(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rate", type=float, default=4000.0, help="flood requests/s (4000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="flood duration (20)")
    ap.add_argument("--method", choices=("REGISTER", "OPTIONS"), default="REGISTER")
    ap.add_argument("--probe-rate", type=float, default=50.0, help="second client's OPTIONS/s")
    ap.add_argument("--modes", default="off,limited", help="off,limited (both, in that order)")
    args = ap.parse_args()
    print(f"flood bench: {args.method} at {args.rate:g}/s for {args.seconds:g} s from "
          f"{FLOODER}; second client {PROBE} sends OPTIONS at {args.probe_rate:g}/s; "
          f"{time.strftime('%Y-%m-%d %H:%M')}, python {sys.version.split()[0]}")
    print(f"machine: {machine_note()}")
    with tempfile.TemporaryDirectory(prefix="pbx-flood-") as tmp:
        for mode in args.modes.split(","):
            run_mode(mode.strip(), args, Path(tmp))


if __name__ == "__main__":
    main()
