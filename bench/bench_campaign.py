"""Campaign throughput: how many notification calls a second `pbx campaign run` places and
completes through a real `pbx run`, with zero failures.

One SIPp UAS registered as extension 1002 answers every call (tests/sipp/switching_uas_answer.xml);
the campaign's script answers nothing itself: `hangup` at once, so a row costs one originate,
one INVITE/200/ACK/BYE and one CDR.  For each rate the list has `--rows` rows; printed: wall
time, rows per second completed, rows answered/failed.  Nothing is asserted.

    .venv/bin/python bench/bench_campaign.py [--rows 100] [--rates 5,10,20] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.switch_harness import free_port, start_switch, write_config  # noqa: E402
from tests.peers.helpers import write_script  # noqa: E402
from tests.peers.switching_helpers import USERS, SippCallee  # noqa: E402


def run_rate(base: Path, rows: int, rate: float, concurrency: int) -> None:
    scripts = base / "scripts"
    scripts.mkdir(parents=True)
    write_script(scripts / "bye.sh", 'echo "hangup"\n', "/bin/sh")
    port = free_port()
    config = write_config(base, port=port, routes="", users=USERS, scripts=scripts)
    sw = start_switch(base, config, port)
    callee = SippCallee("switching_uas_answer.xml", port, "1002", base / "sipp", calls=rows,
                        timeout=rows / rate * 4 + 60)
    listing = base / "list.csv"
    with listing.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "row"])
        w.writerows([["1002", str(i)] for i in range(rows)])
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pbxcore", "campaign", "run", str(listing), "--script",
             "bye.sh", "--concurrency", str(concurrency), "--rate", str(rate),
             "--config", str(config)],
            cwd=REPO, capture_output=True, text=True, timeout=rows / rate * 4 + 120)
        took = time.monotonic() - started
        with (base / "list.results.csv").open(newline="") as f:
            results = list(csv.DictReader(f))
        answered = sum(r["status"] == "answered" for r in results)
        print(f"rate {rate:6.1f}/s  concurrency {concurrency:3d}  rows {rows:5d}  "
              f"wall {took:6.1f} s  completed {rows / took:6.2f} rows/s  "
              f"answered {answered}  other {rows - answered}  exit {proc.returncode}")
    finally:
        callee.stop()
        sw.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--rates", default="5,10,20")
    ap.add_argument("--concurrency", type=int, default=10)
    args = ap.parse_args()
    for rate in (float(r) for r in args.rates.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench_campaign_") as tmp:
            run_rate(Path(tmp), args.rows, rate, args.concurrency)


if __name__ == "__main__":
    main()
