"""Calls per second with zero failed calls: sipp against a /bin/sh script that plays 1 s.

    .venv/bin/python bench/bench_cps.py [--rates 25,50,100,150,200,250,300] [--step 10]

One `pbx run` (SQLite store, as shipped) serves a public route whose script answers, plays a 1 s
tone and hangs up.  sipp (bench/sipp/uac_wait_bye.xml) calls it at each rate for STEP seconds
and waits for the switch's BYE; its RTP goes to a socket nobody reads.  Per step we print calls
attempted, successful, failed, sipp's retransmissions, the switch's CPU% (utime+stime from
/proc/PID/stat over the step; 100% = one core), its scripts' CPU% (reaped children), sipp's
CPU%, the whole machine's busy % (100% = both cores) and the switch's max RSS.  The
headline is the highest rate with zero failed calls.  Steps stop after two
failing rates in a row.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    HOST,
    SIPP,
    RssSampler,
    bench_switch,
    cpu_percent,
    free_port,
    machine_busy,
    machine_note,
    machine_percent,
    proc_sample,
    write_script,
    write_tone_wav,
)

SCENARIO = Path(__file__).resolve().parent / "sipp" / "uac_wait_bye.xml"
GOAL_CPS = 200
ANCHOR = "Asterisk 20 + bash AGI, same flow: 100 calls/s with 0 failures, collapses at 110"
SCRIPT = """#!/bin/sh
# answer, play ~1 s, hang up; nothing to do on the hangup event
case $PBX_EVENT in
    incoming) echo answer; echo 'play tone1s'; echo hangup ;;
esac
"""
WORKER = """#!/usr/bin/python3
# The same logic as a persistent worker: one JSON event per line in, one actions line out.
import json, sys
INCOMING = [{"action": "answer"}, {"action": "play", "files": ["tone1s"]}, {"action": "hangup"}]
for line in sys.stdin:
    event = json.loads(line)
    sys.stdout.write(json.dumps(INCOMING if event["event"] == "incoming" else []) + "\\n")
    sys.stdout.flush()
"""


def _media_port() -> int:
    """A port for sipp's -mp: sipp also binds port+2 (video), so both must be free."""
    for _ in range(100):
        port = free_port(both=False) // 2 * 2
        if all(_udp_free(p) for p in (port, port + 1, port + 2, port + 3)):
            return int(port)
    raise RuntimeError("no free media port pair for sipp")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def sipp_step(port: int, sink: int, rate: int, calls: int, work: Path, bound: float) -> dict[str, str]:
    """Run one sipp step; the last row of its stat CSV plus rc and wall time."""
    work.mkdir(parents=True, exist_ok=True)
    stat = work / "stat.csv"
    cmd = [SIPP, f"{HOST}:{port}", "-sf", str(SCENARIO), "-s", "1", "-key", "sink_port", str(sink),
           "-i", HOST, "-mi", HOST, "-p", str(free_port(both=False)),
           "-mp", str(_media_port()), "-r", str(rate), "-m", str(calls),
           "-l", str(rate * 20), "-timeout", f"{int(bound)}s", "-timeout_error",
           "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1",
           "-trace_screen", "-screen_file", str(work / "screen.log")]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=work, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=bound + 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    out: dict[str, str] = {"rc": str(proc.returncode), "wall": f"{time.monotonic() - t0:.1f}",
                           "stderr": err.decode(errors="replace")[-500:]}
    if stat.exists():
        rows = list(csv.DictReader(stat.read_text().splitlines(), delimiter=";"))
        if rows:
            out.update({k: v for k, v in rows[-1].items() if k})
    return out


def _hms(value: str) -> float:
    """sipp's HH:MM:SS:usec duration as milliseconds (nan when missing)."""
    try:
        h, m, sec, usec = (int(x) for x in value.split(":"))
    except (AttributeError, ValueError):
        return float("nan")
    return ((h * 60 + m) * 60 + sec) * 1e3 + usec / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rates", default="25,50,100,150,200,250,300",
                    help="calls/s to step through (default 25,50,100,150,200,250,300)")
    ap.add_argument("--step", type=float, default=10.0, help="seconds of calls per rate (10)")
    ap.add_argument("--store", choices=("sqlite", "memory"), default="sqlite",
                    help="the switch's store: sqlite (default, as shipped) or memory (in-process)")
    ap.add_argument("--keep-going", action="store_true", help="do not stop after 2 failing rates")
    ap.add_argument("--transport", choices=("process", "worker"), default="process",
                    help="process: a /bin/sh script per event; worker: a pool of 4 Python "
                         "workers speaking JSON lines (issue 3's anchor: Asterisk's pure "
                         "dialplan, 800 calls/s)")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    print(f"cps bench: rates {rates}, {args.step:g} s each, call = answer + play 1 s + hangup "
          f"(switch BYE); {time.strftime('%Y-%m-%d %H:%M')}, python {sys.version.split()[0]}")
    print(f"machine: {machine_note()}")
    print(f"goal: {GOAL_CPS} calls/s with 0 failed; anchor: {ANCHOR}")
    results = []
    with tempfile.TemporaryDirectory(prefix="pbx-bench-") as tmp:
        d = Path(tmp)
        sounds = d / "sounds"
        write_tone_wav(sounds / "en" / "tone1s.wav", 1.0)
        worker = args.transport == "worker"
        script = (write_script(d / "play1s.py", WORKER) if worker
                  else write_script(d / "play1s.sh", SCRIPT))
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind((HOST, 0))  # never read: what overflows is dropped by the kernel
        try:
            store = "memory://" if args.store == "memory" else "sqlite:///var/pbx.db"
            with bench_switch(d, [("^1$", script)], sounds=sounds, rtp_size=6000,
                              store=store, handler="worker" if worker else "script",
                              route_extra="workers = 4\n" if worker else "") as sw:
                print(f"  store: {store}; transport: {args.transport}")
                print(f"  {'rate':>5} {'calls':>6} {'ok':>6} {'failed':>6} {'retrans':>7} "
                      f"{'setup avg':>9} {'switch CPU':>10} {'scripts CPU':>11} {'sipp CPU':>8} "
                      f"{'machine':>7} {'max RSS':>9}  sipp rc  wall")
                # Warm-up, not reported: lazy imports, the store's first writes, prompt cache.
                sipp_step(sw.port, sink.getsockname()[1], 5, 10, d / "sipp-warmup", bound=30)
                time.sleep(1.0)
                failing = 0
                for rate in rates:
                    calls = max(1, int(rate * args.step))
                    before = proc_sample(sw.pid)
                    box0, kids0 = machine_busy(), resource.getrusage(resource.RUSAGE_CHILDREN)
                    with RssSampler(sw.pid) as rss:
                        for attempt in range(3):  # rc 254: a port sipp wanted was taken
                            res = sipp_step(sw.port, sink.getsockname()[1], rate, calls,
                                            d / f"sipp-{rate}-{attempt}", bound=args.step + 40)
                            if res["rc"] != "254":
                                break
                    after = proc_sample(sw.pid)
                    box = machine_percent(box0, machine_busy())
                    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
                    sipp_cpu = 100 * (kids.ru_utime + kids.ru_stime - kids0.ru_utime
                                      - kids0.ru_stime) / max(after.at - before.at, 1e-9)
                    cpu, children = cpu_percent(before, after)
                    ok = int(res.get("SuccessfulCall(C)", 0) or 0)
                    failed = int(res.get("FailedCall(C)", 0) or 0)
                    created = int(res.get("TotalCallCreated", 0) or 0)
                    failed = max(failed, calls - ok)  # calls sipp never finished count as failed
                    retrans = res.get("Retransmissions(C)", "?")
                    setup = _hms(res.get("ResponseTime1(C)", ""))
                    print(f"  {rate:5d} {created:6d} {ok:6d} {failed:6d} {retrans:>7} "
                          f"{setup:7.0f}ms {cpu:9.0f}% {children:10.0f}% {sipp_cpu:7.0f}% "
                          f"{box:6.0f}% "
                          f"{rss.max_kb / 1024:7.1f}MB  "
                          f"{res['rc']:>7}  {res['wall']}s", flush=True)
                    if res["rc"] not in ("0", "1") and not ok:
                        print("    sipp:", res["stderr"].strip()[-300:])
                    results.append((rate, failed, retrans == "0"))
                    failing = failing + 1 if failed else 0
                    if failing >= 2 and not args.keep_going:
                        break
                    time.sleep(2.0)  # let the switch finish the step's hangup events
        finally:
            sink.close()
    print(f"machine at the end: {machine_note()}")
    held = [rate for rate, failed, _ in results if failed == 0]
    best = max(held) if held else 0
    clean_prefix = quiet = 0
    for rate, failed, _ in results:
        if failed:
            break
        clean_prefix = rate
    for rate, failed, no_retrans in results:
        if failed or not no_retrans:
            break
        quiet = rate
    print(f"\nheadline: {clean_prefix} calls/s with zero failed calls (highest rate of the "
          f"unbroken clean run; highest clean step {best}); goal {GOAL_CPS} "
          f"({clean_prefix / GOAL_CPS:.2f}x of goal; anchor Asterisk 100 -> "
          f"{clean_prefix / 100:.2f}x)")
    print(f"          {quiet} calls/s with zero failed calls and zero retransmissions "
          "(every INVITE answered within sipp's 500 ms T1)")


if __name__ == "__main__":
    main()
