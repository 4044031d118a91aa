"""`pbx campaign run` against a real `pbx run` and SIPp phones: a 10-row list whose numbers
answer (SIPp UAS, the script sets `result`), are busy (486), never answer (rings until our
CANCEL) or are not registered; the campaign is SIGKILLed mid-way (by pid) and run again, and
resumes: every row ends with the right status, answered rows carry the script's result, busy
and unanswered rows were tried 1 + retries times, and no answered row was called twice (the
answering SIPp takes exactly as many calls as there are answered rows, or it does not exit 0).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.peers.helpers import poll, write_script
from tests.peers.switching_helpers import USERS, Callees, SippCallee

pytestmark = pytest.mark.peer

SCRIPT = r"""
case "$PBX_EVENT" in
incoming) echo "wait 0.3"; echo "set result=confirmed-$PBX_VAR_ORDER"; echo "hangup";;
esac
"""
# 6 rows answered by 1002, 2 busy (1003), 1 ringing until cancelled (1004), 1 not registered
NUMBERS = ["1002", "1003", "1002", "1004", "1002", "1006", "1002", "1003", "1002", "1002"]
RETRIES = 1


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    base = tmp_path_factory.mktemp("campaign")
    scripts = base / "scripts"
    scripts.mkdir()
    write_script(scripts / "notice.sh", SCRIPT, "/bin/sh")
    port = free_port()
    config = write_config(base, port=port, routes="", users=USERS, scripts=scripts)
    sw = start_switch(base, config, port)
    try:
        yield sw
    finally:
        sw.stop()
        print(f"--- pbx run log ({sw.log})\n{sw.log_text()[-12000:]}")


def start_campaign(sw: SwitchProcess, listing: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pbxcore", "campaign", "run", str(listing), "--script",
             "notice.sh", "--concurrency", "2", "--rate", "10", "--retries", str(RETRIES),
             "--backoff", "0.5", "--ring-timeout", "2", "--config", str(sw.config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)


def results(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_campaign_is_killed_and_resumes(sw: SwitchProcess, tmp_path: Path) -> None:
    listing = tmp_path / "notify.csv"
    with listing.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "order", "name"])
        for i, number in enumerate(NUMBERS, start=1):
            w.writerow([number, str(4700 + i), f"client {i}"])
    out_csv = tmp_path / "notify.results.csv"
    log = tmp_path / "campaign.log"
    with Callees() as c:
        answer = c.start(SippCallee("switching_uas_answer.xml", sw.port, "1002",
                                    tmp_path / "answer", calls=6, timeout=120))
        busy = c.start(SippCallee("switching_uas_busy.xml", sw.port, "1003", tmp_path / "busy",
                                  calls=2 * (1 + RETRIES), timeout=120))
        ring = c.start(SippCallee("switching_uas_ring.xml", sw.port, "1004", tmp_path / "ring",
                                  calls=1 + RETRIES, timeout=120))
        first = start_campaign(sw, listing, log)
        try:
            # killed while a call to the answering phone is out: the resumed run must follow
            # that call to its CDR, not place it again
            done = poll(lambda: (rows := results(out_csv)) and sum(
                r["status"] in ("answered", "busy") for r in rows) >= 2 and any(
                r["status"] == "calling" and r["number"] == "1002" for r in rows),
                timeout=60, every=0.05)
            assert done, log.read_text(errors="replace")
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        interrupted = results(out_csv)
        assert any(r["status"] == "calling" for r in interrupted), interrupted
        assert any(r["status"] in ("", "pending") for r in interrupted), interrupted
        second = start_campaign(sw, listing, log)
        try:
            assert second.wait(120) == 0, log.read_text(errors="replace")
        finally:
            if second.poll() is None:
                os.killpg(second.pid, signal.SIGKILL)
                second.wait(10)
        for peer in (answer, busy, ring):
            assert peer.wait(30) == 0, peer.logs()
    rows = results(out_csv)
    assert [r["number"] for r in rows] == NUMBERS
    got = [(r["number"], r["status"], r["attempts"], r["result"]) for r in rows]
    want = []
    for i, number in enumerate(NUMBERS, start=1):
        if number == "1002":
            want.append((number, "answered", "1", f"confirmed-{4700 + i}"))
        else:
            status = {"1003": "busy", "1004": "noanswer", "1006": "failed"}[number]
            want.append((number, status, str(1 + RETRIES), ""))
    assert got == want, log.read_text(errors="replace")
    assert "10 rows: 6 answered, 2 busy, 1 no answer, 1 failed" in log.read_text()
