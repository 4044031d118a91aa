"""RTP media load: N MediaSessions send G.711 to N sink sockets on loopback.

usage: python bench/bench_media.py [N=200] [SECONDS=5]

The sinks run in a child process (so their work does not count as ours) and timestamp
every arrival; we print the outgoing packet spacing per stream (p50/p99 of the gaps,
summarised over streams), packet loss, the pacer's own lateness, the sender's CPU% and
memory per session (tracemalloc while opening, and RSS delta). Prints figures, asserts
nothing; total runtime about SECONDS + 3 s.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import selectors
import socket
import statistics
import sys
import time
import tracemalloc
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pbxcore.media.pacer import Pacer  # noqa: E402
from pbxcore.media.ports import PortAllocator  # noqa: E402
from pbxcore.media.session import MediaSession  # noqa: E402
from pbxcore.rtp.tones import ringback_eu, tone  # noqa: E402
from pbxcore.sip.sdp import AudioAnswer  # noqa: E402

HOST = "127.0.0.1"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def sink_main(n: int, seconds: float, conn: Connection) -> None:
    """Child process: n UDP sockets; per socket, the gaps between arrivals (ms)."""
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    sel.register(conn, selectors.EVENT_READ, -1)
    # Drain (and ignore) the warm-up until the sender says when measuring starts.
    start_at = deadline = float("inf")
    last: list[float | None] = [None] * n
    gaps: list[list[float]] = [[] for _ in range(n)]
    counts = [0] * n
    while (now := time.monotonic()) < deadline:
        timeout = None if deadline == float("inf") else deadline - now
        for key, _ in sel.select(timeout=timeout):
            i = key.data
            if i < 0:
                start_at = conn.recv()
                deadline = start_at + seconds
                sel.unregister(conn)
                continue
            s = key.fileobj
            assert isinstance(s, socket.socket)
            while True:
                try:
                    s.recv(2048)
                except BlockingIOError:
                    break
                t = time.monotonic()
                if t >= start_at:
                    counts[i] += 1
                    prev = last[i]
                    if prev is not None:
                        gaps[i].append((t - prev) * 1e3)
                    last[i] = t
    conn.send((gaps, counts))
    for s in socks:
        s.close()


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def main(n: int, seconds: float) -> None:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=sink_main, args=(n, seconds, child))
    proc.start()
    try:
        sink_ports: list[int] = parent.recv()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            low = min(probe.getsockname()[1], 65535 - 4 * n - 2)
        allocator = PortAllocator(low, low + 4 * n)
        pacer = Pacer()
        prompt = tone((350, 440), 3000, amplitude=6000)
        ring = ringback_eu()

        rss0 = rss_kb()
        tracemalloc.start()
        snap0 = tracemalloc.take_snapshot()
        sessions = [await MediaSession.open(HOST, allocator, pacer) for _ in range(n)]
        for s, port in zip(sessions, sink_ports, strict=True):
            s.configure(AudioAnswer("PCMU", 0, 101, HOST, port, "sendrecv"))
            s.set_background(ring)
        await pacer.start()
        await asyncio.sleep(0.1)  # first ticks encode the background audio
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        traced = sum(st.size_diff for st in snap1.compare_to(snap0, "filename"))
        rss1 = rss_kb()

        async def talker(s: MediaSession) -> None:
            while True:
                await s.play(prompt)
                await asyncio.sleep(0.5)  # ringback in between

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(talker(s)) for s in sessions]
            await asyncio.sleep(1.0)  # warm-up
            parent.send(time.monotonic())
            ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            sent0 = sum(s.sent_packets for s in sessions)
            await asyncio.sleep(seconds)
            ru1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            sent1 = sum(s.sent_packets for s in sessions)
            for t in tasks:
                t.cancel()
        pstats = pacer.stats()
        await pacer.stop()
        for s in sessions:
            await s.close()
        gaps, counts = await asyncio.to_thread(parent.recv)
    finally:
        proc.join(timeout=seconds + 5)
        if proc.is_alive():
            proc.kill()

    cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / (t1 - t0) * 100
    p50s = [pct(g, 0.5) for g in gaps if g]
    p99s = [pct(g, 0.99) for g in gaps if g]
    allg = [x for g in gaps for x in g]
    expected = seconds / 0.020
    print(f"media bench: {n} sessions, {seconds:.1f} s measured, G.711 PCMU 20 ms, loopback")
    print(f"  packets sent      {sent1 - sent0} ({(sent1 - sent0) / (t1 - t0):.0f}/s)")
    print(
        f"  packets received  {sum(counts)} (expected ~{expected * n:.0f}; min per stream {min(counts)})"
    )
    print("  spacing per stream (ms, target 20.0):")
    print(
        f"    p50: median {statistics.median(p50s):.2f}  min {min(p50s):.2f}  max {max(p50s):.2f}"
    )
    print(f"    p99: median {statistics.median(p99s):.2f}  worst {max(p99s):.2f}")
    print(
        f"    all gaps: p1 {pct(allg, 0.01):.2f}  p50 {pct(allg, 0.5):.2f}  p99 {pct(allg, 0.99):.2f}  max {max(allg):.2f}"
    )
    print(
        f"  pacer: {pstats.ticks} ticks, lateness p50 {pstats.lateness_p50_ms:.2f} ms "
        f"p99 {pstats.lateness_p99_ms:.2f} ms; one tick of all {n} streams takes "
        f"p50 {pstats.tick_cost_p50_ms:.2f} ms p99 {pstats.tick_cost_p99_ms:.2f} ms; "
        f"caught up {pstats.caught_up}, skipped {pstats.skipped}"
    )
    print(
        f"  sender CPU        {cpu:.1f}% of one core ({cpu / n:.3f}% per session, "
        f"{cpu * 10000 / max(1, sent1 - sent0) * (t1 - t0):.1f} us per packet)"
    )
    print(
        f"  memory/session    {traced / n / 1024:.1f} KiB traced (ringback/prompt encodings shared), "
        f"{(rss1 - rss0) / n:.1f} KiB RSS delta"
    )


if __name__ == "__main__":
    n_arg = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    asyncio.run(main(n_arg, secs))
