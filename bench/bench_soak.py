"""Soak: SIPp calls through a seeded lossy UDP relay; every call completes, no CDR lost or open.

    .venv/bin/python bench/bench_soak.py [--calls 10000] [--rate 20] [--loss 0.05]
        [--dup 0.02] [--reorder 0.05] [--seed 1] [--play 1.0]

One `pbx run` (SQLite store, as shipped) serves a public route whose /bin/sh script answers,
plays a short tone and hangs up.  SIPp (bench/sipp/uac_soak.xml) places CALLS calls at RATE
calls/s to bench/lossy_relay.py, which forwards to the switch and back, losing, duplicating and
reordering datagrams in both directions (one seeded random.Random).  RTP goes straight from the
switch to a socket nobody reads: the signalling is what the relay tests.

Afterwards, once the switch has had time to end every call (or 60 s), the store is read: CDRs,
CDRs with no end time (left open), dispositions, and the SIP Call-IDs SIPp created against the
CDRs' (every call SIPp started must have exactly one CDR).  Goal: >= 99.9% of calls complete,
zero CDRs lost or left open.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    HOST,
    SIPP,
    RssSampler,
    bench_switch,
    cpu_percent,
    free_port,
    machine_note,
    proc_sample,
    write_script,
    write_tone_wav,
)

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "sipp" / "uac_soak.xml"
SCRIPT = """#!/bin/sh
case $PBX_EVENT in
    incoming) echo answer; echo 'play tone'; echo hangup ;;
esac
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


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _cdrs(db: Path) -> list[tuple[str, str | None, str | None, str | None]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return list(conn.execute("SELECT sip_call_id, end_time, disposition, hangup_by FROM cdr"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=20.0, help="calls/s (20)")
    ap.add_argument("--loss", type=float, default=0.05, help="per datagram, each way (0.05)")
    ap.add_argument("--dup", type=float, default=0.02, help="duplicated datagrams (0.02)")
    ap.add_argument("--reorder", type=float, default=0.05, help="held back 30-150 ms (0.05)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--play", type=float, default=1.0, help="seconds of tone per call (1.0)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    print(f"soak: {args.calls} calls at {args.rate:g}/s through a relay with loss {args.loss}, "
          f"dup {args.dup}, reorder {args.reorder}, seed {args.seed}; call = answer + play "
          f"{args.play:g} s + switch BYE; {time.strftime('%Y-%m-%d %H:%M')}, "
          f"python {sys.version.split()[0]}")
    print(f"machine: {machine_note()}")
    tmp = tempfile.mkdtemp(prefix="pbx-soak-")
    d = Path(tmp)
    sounds = d / "sounds"
    write_tone_wav(sounds / "en" / "tone.wav", args.play)
    script = write_script(d / "soak.sh", SCRIPT)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    relay_port = free_port(both=False)
    stats_file = d / "relay.json"
    result: dict[str, str] = {}
    with bench_switch(d, [("^1$", script)], sounds=sounds, rtp_size=4000) as sw:
        relay = subprocess.Popen(
            [sys.executable, str(HERE / "lossy_relay.py"), "--listen", str(relay_port),
             "--to", str(sw.port), "--loss", str(args.loss), "--dup", str(args.dup),
             "--reorder", str(args.reorder), "--seed", str(args.seed),
             "--stats", str(stats_file)],
            stdout=subprocess.PIPE, start_new_session=True)
        try:
            assert relay.stdout is not None
            print(" ", relay.stdout.readline().decode().strip())
            before = proc_sample(sw.pid)
            work = d / "sipp"
            work.mkdir()
            stat = work / "stat.csv"
            bound = args.calls / args.rate + 120
            cmd = [SIPP, f"{HOST}:{relay_port}", "-sf", str(SCENARIO), "-s", "1",
                   "-key", "sink_port", str(sink.getsockname()[1]),
                   "-i", HOST, "-mi", HOST, "-p", str(free_port(both=False)),
                   "-mp", str(_media_port()), "-r", f"{args.rate:g}", "-m", str(args.calls),
                   "-l", str(int(args.rate * 60)), "-timeout", f"{int(bound)}s",
                   "-timeout_error", "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "5",
                   "-trace_err", "-error_file", str(work / "errors.log"),
                   "-trace_screen", "-screen_file", str(work / "screen.log")]
            t0 = time.monotonic()
            with RssSampler(sw.pid, interval=1.0) as rss:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, cwd=work, start_new_session=True)
                try:
                    _, err = proc.communicate(timeout=bound + 30)
                except subprocess.TimeoutExpired:
                    _stop(proc, signal.SIGKILL)
                    _, err = proc.communicate(timeout=10)
            wall = time.monotonic() - t0
            after = proc_sample(sw.pid)
            if stat.exists():
                rows = list(csv.DictReader(stat.read_text().splitlines(), delimiter=";"))
                if rows:
                    result = {k: v for k, v in rows[-1].items() if k}
            print(f"  sipp rc {proc.returncode} in {wall:.0f} s"
                  + (f"; stderr: {err.decode(errors='replace').strip()[-300:]}"
                     if proc.returncode not in (0, 1) else ""))
            # Let the switch end what is still running (a call whose ACK never came ends with
            # BYE after 64*T1 = 32 s), then read the store while the switch still runs: a
            # shutdown would close open CDRs and hide them.
            db = d / "var" / "pbx.db"
            deadline = time.monotonic() + 60
            rows_db = _cdrs(db)
            while time.monotonic() < deadline and any(r[1] is None for r in rows_db):
                time.sleep(2)
                rows_db = _cdrs(db)
            cpu, _ = cpu_percent(before, after)
        finally:
            _stop(relay)
            sink.close()
    created = int(result.get("TotalCallCreated", 0) or 0)
    ok = int(result.get("SuccessfulCall(C)", 0) or 0)
    failed = int(result.get("FailedCall(C)", 0) or 0)
    retrans = result.get("Retransmissions(C)", "?")
    relay_counts = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    sip_ids = Counter(r[0] for r in rows_db)
    open_cdrs = [r for r in rows_db if r[1] is None]
    dispositions = Counter(f"{r[2]}/{r[3]}" for r in rows_db)
    print(f"  calls: {created} created, {ok} successful, {failed} failed "
          f"({100 * ok / max(created, 1):.2f}% completed; goal >= 99.9%); "
          f"sipp retransmissions {retrans}")
    print(f"  relay: {relay_counts}")
    print(f"  CDRs: {len(rows_db)} rows for {len(sip_ids)} SIP Call-IDs "
          f"({sum(1 for n in sip_ids.values() if n > 1)} Call-IDs with more than one), "
          f"{len(open_cdrs)} left open; lost = {max(created - len(sip_ids), 0)} "
          "(calls SIPp created without a CDR)")
    print(f"  dispositions (disposition/hangup_by): {dict(dispositions.most_common())}")
    print(f"  switch CPU {cpu:.0f}% of a core over the run, max RSS {rss.max_kb / 1024:.1f} MB")
    errors = work / "errors.log"
    if failed and errors.exists():
        print("  sipp errors (last lines):")
        for line in errors.read_text(errors="replace").splitlines()[-8:]:
            print("   ", line[:200])
    print(f"machine at the end: {machine_note()}")
    if args.keep or failed or open_cdrs:
        print(f"  kept {d} (pbx.log, sipp/, var/pbx.db)")
    else:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
