"""`pbx report` and `pbx cdr` against a real `pbx run`: a SIPp agent answers one queued call, a
second caller gives up while the agent is paused; the report's figures must be the journal's
and the CDRs' own numbers (nothing kept on the side)."""

from __future__ import annotations

import csv
import io
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac
from tests.peers.helpers import closed_cdr, poll, write_script
from tests.peers.switching_helpers import USERS, Callees, SippCallee

pytestmark = pytest.mark.peer

SCRIPT = r"""
case "$PBX_EVENT" in
incoming) echo "queue support";;
queue) echo hangup;;
esac
"""


@pytest.fixture
def sw(tmp_path: Path) -> Iterator[SwitchProcess]:
    script = write_script(tmp_path / "queue.sh", SCRIPT, "/bin/sh")
    routes = f"""
        [[routes]]
        match = "^70$"
        script = "{script}"
        public = true

        [[queues]]
        name = "support"
        members = ["1002"]
        ring_timeout = 10
        wrapup = 1
        service_level = 20
        """
    port = free_port()
    config = write_config(tmp_path, port=port, routes=textwrap.dedent(routes), users=USERS)
    switch = start_switch(tmp_path, config, port)
    try:
        yield switch
    finally:
        switch.stop()
        print(f"--- pbx run log ({switch.log})\n{switch.log_text()[-20000:]}")


def pbx_json(sw: SwitchProcess, *args: str) -> Any:
    out = sw.pbx(*args, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_report_figures_are_the_journals(sw: SwitchProcess, tmp_path: Path) -> None:
    with Callees() as callees:
        phone = callees.start(SippCallee("queue_agent.xml", sw.port, "1002", tmp_path / "a"))
        assert sw.pbx("agent", "login", "1002").returncode == 0
        first = Uac(sw.port, user="5550101")
        try:
            resp = first.call("70")
            assert resp is not None and resp.status == 200
            assert first.wait_bye(15) is not None  # the agent talked ~1.5 s and hung up
        finally:
            first.close()
        assert phone.wait() == 0, phone.logs()
    answered = closed_cdr(sw, first.call_id)
    assert sw.pbx("agent", "pause", "1002", "--reason", "lunch").returncode == 0
    second = Uac(sw.port, user="5550102")
    try:
        resp = second.call("70")
        assert resp is not None and resp.status == 200
        time.sleep(1.0)  # waits with nobody to answer, then gives up
        second.bye()
    finally:
        second.close()
    given_up = closed_cdr(sw, second.call_id)
    assert sw.pbx("agent", "logout", "1002").returncode == 0

    def rows() -> list[dict[str, Any]] | None:
        got = pbx_json(sw, "journal", "--queue", "support")
        return got if any(r["event"] == "ABANDON" for r in got) else None

    journal = poll(rows, timeout=10, every=0.3)
    assert journal, "no ABANDON row"
    connect = next(r for r in journal if r["event"] == "CONNECT")
    complete = next(r for r in journal if r["event"].startswith("COMPLETE"))
    abandon = next(r for r in journal if r["event"] == "ABANDON")
    assert (connect["callid"], abandon["callid"]) == (answered["call_id"], given_up["call_id"])

    doc = pbx_json(sw, "report", "--from", "1h", "--by", "queue")
    [support] = doc["rows"]
    assert support["key"] == "support"
    assert (support["calls"], support["offered"], support["answered"], support["abandoned"],
            support["short_abandoned"]) == (2, 2, 1, 1, 1)  # gave up after ~1 s <= 5 s
    assert support["asa"] == float(connect["data1"])  # CONNECT's holdtime
    assert support["talk"] == float(complete["data2"])  # COMPLETE*'s calltime
    assert support["max_wait"] == max(float(connect["data1"]), float(abandon["data3"]))
    assert (support["sl"], support["sl2"]) == (1.0, 0.5)  # waited < 20 s; 1 of 1+1
    assert support["hold"] == 0.0  # the leg recorded hold_seconds, never held
    assert support["wrapup"] > 0  # the agent's wrapup state after the call (agent events)

    agents = pbx_json(sw, "report", "--from", "1h", "--by", "agent")
    [a] = agents["rows"]
    assert (a["key"], a["answered"]) == ("1002", 1)
    assert a["logged_in"] > 0 and a["pauses"].keys() == {"lunch"} and a["busy"] > 0
    assert [(p["agent"], p["reason"]) for p in agents["pauses"]] == [("1002", "lunch")]

    out = tmp_path / "cdr.csv"
    result = sw.pbx("cdr", "--from", "1h", "--queue", "support", "--csv", str(out))
    assert result.returncode == 0, result.stderr
    got = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["call_id"], r["direction"], r["disposition"], r["agents"]) for r in got] == [
        (given_up["call_id"], "in", given_up["disposition"], ""),
        (answered["call_id"], "in", "answered", "1002")]
    chart = tmp_path / "today.png"
    result = sw.pbx("report", "--from", "1h", "--chart", str(chart))
    assert result.returncode == 0, result.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
