"""Concurrent calls playing audio: outgoing RTP packet spacing and memory per call.

    .venv/bin/python bench/bench_concurrent_calls.py [--calls 50,100,200] [--window 10]

For each N, a fresh `pbx run` gets N calls from a raw Python UAC (bench/_harness.py) on a public
route whose /bin/sh script answers and plays the demo's hold music looped.  Every call's SDP
points at its own UDP socket, owned by a child process that timestamps each arriving packet in
the kernel (SO_TIMESTAMPNS), so its own scheduling does not show up as jitter.  Over WINDOW
seconds with all N calls up we print, per stream, the gaps between consecutive packets (p50,
p99; then the median and the worst stream), packets lost (RTP sequence gaps), the switch's
CPU% and memory per call = (RSS with N calls - RSS idle after one warm-up call) / N.
Goal: packet spacing p99 < 30 ms.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import selectors
import socket
import struct
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    HOST,
    SO_TIMESTAMPNS,
    RawUac,
    bench_switch,
    cpu_percent,
    machine_note,
    pct,
    proc_sample,
    write_script,
)

GOAL_P99_MS = 30.0
SCRIPT = """#!/bin/sh
case $PBX_EVENT in
    incoming) echo answer; echo 'play moh loop=100' ;;
esac
"""


def sink_main(n: int, conn: Connection) -> None:
    """Child: N RTP sinks; records kernel arrival times between 'start' and 'stop'."""
    socks = []
    sel = selectors.DefaultSelector()
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind((HOST, 0))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks.append(s)
    sel.register(conn, selectors.EVENT_READ, -1)
    conn.send([s.getsockname()[1] for s in socks])
    recording = False
    arrivals: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # (ns, rtp seq)
    while True:
        for key, _ in sel.select(1.0):
            if key.data == -1:
                cmd = conn.recv()
                if cmd == "start":
                    recording = True
                elif cmd == "stop":
                    conn.send(_summary(arrivals))
                    return
                continue
            s = socks[key.data]
            while True:
                try:
                    data, anc, _, _ = s.recvmsg(2048, 64)
                except BlockingIOError:
                    break
                if not recording or len(data) < 12:
                    continue
                ts = time.time_ns()
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", raw[:16])
                        ts = sec * 1_000_000_000 + nsec
                arrivals[key.data].append((ts, struct.unpack("!H", data[2:4])[0]))


def _summary(arrivals: list[list[tuple[int, int]]]) -> dict[str, object]:
    per_p50, per_p99, pooled, silent, lost, received = [], [], [], 0, 0, 0
    for stream in arrivals:
        received += len(stream)
        if len(stream) < 2:
            silent += 1
            continue
        gaps = [(b[0] - a[0]) / 1e6 for a, b in zip(stream, stream[1:], strict=False)]
        pooled += gaps
        per_p50.append(pct(gaps, .5))
        per_p99.append(pct(gaps, .99))
        expected = (stream[-1][1] - stream[0][1]) % 65536 + 1
        lost += max(0, expected - len(stream))
    return {"received": received, "silent": silent, "lost": lost,
            "p50": pct(pooled, .5), "p99": pct(pooled, .99), "p999": pct(pooled, .999),
            "max": max(pooled, default=float("nan")),
            "stream_p50_median": pct(per_p50, .5), "stream_p99_median": pct(per_p99, .5),
            "stream_p99_worst": max(per_p99, default=float("nan"))}


def run_n(n: int, window: float, setup_rate: float, tmp: Path) -> dict[str, float]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    sink = ctx.Process(target=sink_main, args=(n, child), daemon=True)
    sink.start()
    try:
        ports: list[int] = parent.recv()
        d = tmp / f"n{n}"
        d.mkdir()
        script = write_script(d / "moh.sh", SCRIPT)
        with bench_switch(d, [("^1$", script)], rtp_size=max(200, 4 * n)) as sw:
            uac = RawUac(sw.port)
            try:
                warm = uac.invite("1", ports[0])  # imports, moh load + encode cache, sqlite
                _until(uac, lambda: warm.ok_ns is not None, 5)
                uac.bye(warm)
                _until(uac, lambda: warm.bye_ok, 5)
                time.sleep(1.0)
                idle = proc_sample(sw.pid)
                legs = []
                start = time.monotonic()
                for i in range(n):
                    due = start + i / setup_rate
                    while (now := time.monotonic()) < due:
                        uac.poll(due - now)
                    legs.append(uac.invite("1", ports[i]))
                _until(uac, lambda: all(leg.final for leg in legs), 15)
                answered = sum(1 for leg in legs if leg.final == 200)
                finals: dict[str, int] = {}
                for leg in legs:  # why a call is not up: its final status, or none yet
                    key = str(leg.final) if leg.final is not None else "none"
                    finals[key] = finals.get(key, 0) + 1
                print(f"  N={n}: INVITE final statuses {finals}", flush=True)
                _until(uac, lambda: False, 1.0)  # settle: ACKs, first packets
                a = proc_sample(sw.pid)
                parent.send("start")
                _until(uac, lambda: False, window)
                parent.send("stop")
                b = proc_sample(sw.pid)
                stats: dict[str, float] = parent.recv()
                for leg in legs:
                    if leg.final == 200:
                        uac.bye(leg)
                _until(uac, lambda: all(leg.bye_ok for leg in legs if leg.final == 200), 10)
            finally:
                uac.close()
        cpu, _ = cpu_percent(a, b)
        setup = [leg.setup_ms for leg in legs if leg.setup_ms is not None]
        stats.update({
            "n": n, "answered": answered, "cpu": cpu, "rss_idle_mb": idle.rss_kb / 1024,
            "rss_mb": b.rss_kb / 1024,
            "kb_per_call": (max(a.rss_kb, b.rss_kb) - idle.rss_kb) / max(answered, 1),
            "setup_p50": pct(setup, .5), "setup_p99": pct(setup, .99),
            "expected": answered * window * 50,
        })
        return stats
    finally:
        if sink.is_alive():
            sink.kill()
        sink.join(5)


def _until(uac: RawUac, done: object, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not done():  # type: ignore[operator]
        uac.poll(min(0.05, max(0.0, end - time.monotonic())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", default="50,100,200", help="concurrent call counts (50,100,200)")
    ap.add_argument("--window", type=float, default=10.0, help="measurement seconds (10)")
    ap.add_argument("--setup-rate", type=float, default=50.0, help="calls/s while setting up (50)")
    args = ap.parse_args()
    counts = [int(x) for x in args.calls.split(",")]
    print(f"concurrent calls bench: N in {counts}, {args.window:g} s window, "
          f"moh looped, PCMU 20 ms; {time.strftime('%Y-%m-%d %H:%M')}, "
          f"python {sys.version.split()[0]}; goal: spacing p99 < {GOAL_P99_MS:g} ms")
    print(f"machine: {machine_note()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pbx-bench-") as tmp:
        for n in counts:
            rows.append(run_n(n, args.window, args.setup_rate, Path(tmp)))
            r = rows[-1]
            print(f"  N={n}: answered {r['answered']}, received {r['received']}/"
                  f"{r['expected']:.0f} packets, lost {r['lost']}, silent streams {r['silent']}",
                  flush=True)
    print(f"machine at the end: {machine_note()}")
    print(f"\n  {'N':>4} {'gap p50':>8} {'gap p99':>8} {'p99.9':>7} {'max':>7} "
          f"{'worst stream p99':>16} {'lost':>6} {'switch CPU':>10} {'RSS':>8} "
          f"{'per call':>9} {'setup p50':>9}")
    for r in rows:
        print(f"  {r['n']:4d} {r['p50']:6.2f}ms {r['p99']:6.2f}ms {r['p999']:5.1f}ms "
              f"{r['max']:5.1f}ms {r['stream_p99_worst']:14.2f}ms {r['lost']:6d} "
              f"{r['cpu']:9.0f}% {r['rss_mb']:6.1f}MB {r['kb_per_call']:7.1f}KB "
              f"{r['setup_p50']:7.2f}ms")
    print(f"  goal: packet spacing p99 < {GOAL_P99_MS:g} ms (gap = time between consecutive "
          "packets of one stream, kernel arrival timestamps)")


if __name__ == "__main__":
    main()
