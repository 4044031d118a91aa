"""Event overhead: INVITE received -> first action applied, minus a bare spawn of the same script.

    .venv/bin/python bench/bench_event_overhead.py [--calls 200] [--rate 10]

A raw Python UAC (bench/_harness.py) calls a public route of a real `pbx run` at RATE calls/s;
the route's script prints `answer` then `hangup`.  Switch latency = INVITE sent -> 200 OK
arrived (kernel receive timestamp), so it covers the SIP stack, the CDR row, the script run
and the answer (RTP port, SDP).  In the same run, the same script is spawned N times from this
process with the same environment and stdin the switch gives it:
  subprocess.run          fork+exec+wait, the floor
  asyncio exec (exit)     asyncio.create_subprocess_exec + communicate + wait
  asyncio exec (1st line) same, time to the first stdout line
With the SQLite store, the switch's CDR start time and trace split each call into: INVITE ->
Call made (SIP stack), Call -> script exec (CDR row, 180, event), the script run as the switch
times it, and script done -> 200 OK (answer: RTP port, SDP).  These use the wall clock of both
processes (same machine) and the trace's microsecond times; the phases of one call add up to
its INVITE -> 200 OK.
Overhead = switch percentile - bare spawn percentile (subprocess.run), for p50 and p99.
An OPTIONS round trip (interleaved with the calls) shows the SIP stack + loopback floor.
Done for a `#!/bin/sh` and a `#!/usr/bin/python3` script.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    Leg,
    RawUac,
    bench_switch,
    cpu_percent,
    machine_note,
    pct,
    proc_sample,
    write_script,
)  # noqa: E402

from pbxcore.script.events import Event, event_env, event_json  # noqa: E402

GOAL_P50_MS, GOAL_P99_MS = 0.5, 3.0
ANCHOR = "Asterisk 20 + bash AGI: 7.97 ms p50 at 10 calls/s, ~6.6 ms above the bash spawn"

SCRIPTS = {
    "sh": "#!/bin/sh\necho answer\necho hangup\n",
    "python3": "#!/usr/bin/python3\nprint('answer')\nprint('hangup')\n",
}


def _event(route: str) -> Event:
    # What the switch passes for `incoming` on a public route (same fields, same sizes).
    return Event("incoming", "0123456789abcdef0123456789abcdef", caller="bench", caller_name="",
                 called=route, route=f"^{route}$", language="en")


def bare_run(script: Path, ev: Event) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(script)], input=event_json(ev), capture_output=True,
                   env=event_env(ev, {}), start_new_session=True, check=True)
    return (time.perf_counter() - t0) * 1e3


async def asyncio_exec(script: Path, ev: Event) -> tuple[float, float]:
    """(ms to first stdout line, ms to exit and EOF)."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(script), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=event_env(ev, {}), start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(event_json(ev))
    proc.stdin.close()
    await proc.stdout.readline()
    first = time.perf_counter()
    await proc.communicate()
    await proc.wait()
    return (first - t0) * 1e3, (time.perf_counter() - t0) * 1e3


def baselines(script: Path, ev: Event, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"subprocess.run": [], "asyncio exec (exit)": [],
                                   "asyncio exec (1st line)": []}

    async def many() -> None:
        for _ in range(n):
            first, done = await asyncio_exec(script, ev)
            out["asyncio exec (1st line)"].append(first)
            out["asyncio exec (exit)"].append(done)
            out["subprocess.run"].append(bare_run(script, ev))

    for _ in range(3):  # warm the page cache and the interpreter
        bare_run(script, ev)
    asyncio.run(many())
    return out


def drive_calls(uac: RawUac, called: str, n: int, rate: float,
                deadline_s: float) -> tuple[list[Leg], list[float], int]:
    """N calls at `rate`/s plus one OPTIONS between calls; (setup ms, OPTIONS ms, failures)."""
    legs, pings = [], []
    start = time.monotonic()
    for i in range(n):
        due = start + i / rate
        while (now := time.monotonic()) < due:
            uac.poll(due - now)
        legs.append(uac.invite(called, 9))  # RTP to the discard port: nobody reads it
        half = due + 0.5 / rate
        while (now := time.monotonic()) < half:
            uac.poll(half - now)
        pings.append(uac.options_ping())
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not all(
            leg.bye_from_switch_ns or (leg.final and leg.final >= 300) for leg in legs):
        uac.poll(0.05)
    opt = [(v[1] - v[0]) / 1e6 for k in pings if len(v := uac.options[k]) > 1]
    failed = sum(1 for leg in legs if leg.final != 200 or not leg.bye_from_switch_ns)
    return legs, opt, failed


@dataclass(frozen=True)
class Phases:
    """Where one call's INVITE -> 200 OK went, from the switch's CDR and trace (ms)."""

    before: float  # INVITE sent -> CDR start (the switch made the Call): SIP stack
    queue: float  # CDR start -> script exec: CDR row written, 180 sent, event built
    run: float  # script run as the switch's trace times it (exec to reaped, parsed)
    after: float  # run over -> 200 OK arrived: trace note, answer (RTP port, SDP), send


def phases(db: Path, legs: list[Leg]) -> dict[str, Phases]:
    """sip Call-ID -> Phases, from the `incoming` script entry of each call's trace."""
    out: dict[str, Phases] = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        for leg in legs:
            rows = conn.execute(
                "SELECT c.start_time, t.ts, t.data FROM trace t JOIN cdr c "
                "ON c.call_id = t.call_id WHERE c.sip_call_id = ? AND t.kind = 'script' "
                "ORDER BY t.seq", (leg.call_id,)).fetchall()
            for start, ts, data in rows:
                entry = json.loads(data)
                if entry.get("event") != "incoming" or leg.ok_ns is None:
                    continue
                start_ms = datetime.fromisoformat(start).timestamp() * 1e3
                done_ms = datetime.fromisoformat(ts).timestamp() * 1e3
                run = float(entry["duration"]) * 1e3
                out[leg.call_id] = Phases(start_ms - leg.invite_ns / 1e6,
                                          done_ms - run - start_ms, run,
                                          leg.ok_ns / 1e6 - done_ms)
                break
    return out


def row(name: str, values: list[float]) -> str:
    return (f"  {name:28s} n={len(values):4d}  p50 {pct(values, .5):8.3f} ms  "
            f"p99 {pct(values, .99):8.3f} ms  max {max(values, default=float('nan')):8.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=200, help="calls per script kind (default 200)")
    ap.add_argument("--rate", type=float, default=10.0, help="calls per second (default 10)")
    ap.add_argument("--store", choices=("sqlite", "memory"), default="sqlite",
                    help="the switch's store: sqlite (default, as shipped) or memory")
    ap.add_argument("--kinds", default="sh,python3", help="script kinds: sh,python3")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k in SCRIPTS]
    print(f"event overhead bench: {args.calls} calls/kind at {args.rate:g} calls/s; "
          f"{time.strftime('%Y-%m-%d %H:%M')}, python {sys.version.split()[0]}")
    print(f"machine: {machine_note()}")
    summary = []
    with tempfile.TemporaryDirectory(prefix="pbx-bench-") as tmp:
        d = Path(tmp)
        scripts = {k: write_script(d / f"answer_hangup_{k}", SCRIPTS[k]) for k in kinds}
        routes = [(f"^{i + 1}$", scripts[k]) for i, k in enumerate(kinds)]
        store = "memory://" if args.store == "memory" else "sqlite:///var/pbx.db"
        with bench_switch(d, routes, store=store) as sw:
            print(f"store: {store}")
            uac = RawUac(sw.port)
            try:
                drive_calls(uac, "1", 5, 20, 3.0)  # warm up: imports, sqlite, first spawn
                time.sleep(0.5)
                idle0 = proc_sample(sw.pid)
                time.sleep(2.0)
                idle_cpu = cpu_percent(idle0, proc_sample(sw.pid))[0]
                print(f"switch idle CPU (no calls): {idle_cpu:.1f}% of a core")
                for i, kind in enumerate(kinds):
                    called = str(i + 1)
                    base = baselines(scripts[kind], _event(called), args.calls)
                    before = proc_sample(sw.pid)
                    legs, opt, failed = drive_calls(uac, called, args.calls, args.rate, 10.0)
                    after = proc_sample(sw.pid)
                    setup = [leg.setup_ms for leg in legs if leg.setup_ms is not None]
                    time.sleep(0.5)  # let the last traces reach the store
                    ph = (phases(d / "var" / "pbx.db", legs) if args.store == "sqlite"
                          else {})
                    print(f"\n[{kind}] script: {SCRIPTS[kind].splitlines()[0]}  "
                          f"(answer; hangup)  failed calls: {failed}")
                    print(row("switch INVITE->200 OK", setup))
                    for name, doc in (("before", "INVITE -> Call made"),
                                      ("queue", "Call -> script exec"),
                                      ("run", "script run (trace)"),
                                      ("after", "script done -> 200 OK")):
                        if ph:  # phases come from the SQLite file (not with --store memory)
                            print(row("  " + doc, [getattr(p, name) for p in ph.values()]))
                    print(row("OPTIONS round trip", opt))
                    for name, values in base.items():
                        print(row("bare " + name, values))
                    bare = base["subprocess.run"]
                    o50 = pct(setup, .5) - pct(bare, .5)
                    o99 = pct(setup, .99) - pct(bare, .99)
                    wall = after.at - before.at
                    cpu = (after.cpu - before.cpu - idle_cpu / 100 * wall) / max(len(setup), 1) * 1e3
                    print(f"  overhead (switch - bare subprocess.run): p50 {o50:.3f} ms "
                          f"(goal <= {GOAL_P50_MS}), p99 {o99:.3f} ms (goal <= {GOAL_P99_MS})")
                    aexit = base["asyncio exec (exit)"]
                    print(f"  overhead vs bare asyncio exec: p50 "
                          f"{pct(setup, .5) - pct(aexit, .5):.3f} ms, p99 "
                          f"{pct(setup, .99) - pct(aexit, .99):.3f} ms")
                    print(f"  switch CPU per call, idle CPU subtracted (SIP, store, 2 script runs, not "
                          "the scripts' own): "
                          f"{cpu:.2f} ms")
                    summary.append((kind, pct(setup, .5), pct(setup, .99), pct(bare, .5),
                                    o50, o99, failed))
            finally:
                uac.close()
    print(f"machine at the end: {machine_note()}")
    print(f"\nsummary (goal: overhead <= {GOAL_P50_MS} ms p50, <= {GOAL_P99_MS} ms p99; "
          f"anchor: {ANCHOR})")
    print("  script   switch p50   switch p99   bare p50   overhead p50   overhead p99  failed")
    for kind, s50, s99, b50, o50, o99, failed in summary:
        print(f"  {kind:8s} {s50:8.3f} ms  {s99:8.3f} ms {b50:7.3f} ms  {o50:9.3f} ms  "
              f"{o99:10.3f} ms  {failed:5d}")


if __name__ == "__main__":
    main()
