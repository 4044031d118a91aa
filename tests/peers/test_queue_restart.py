"""A queue across a hot reload and across kill -9: callers waiting keep their place when the
members change, and a restarted switch closes what the dead one left open in the journal and
brings its agents back logged in (Asterisk's persistentmembers)."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac
from tests.peers.helpers import closed_cdr, poll, write_script
from tests.peers.switching_helpers import USERS, Callees, SippCallee

pytestmark = pytest.mark.peer

QUEUE = """
[[routes]]
match = "^80$"
script = "{script}"
public = true

[[queues]]
name = "q"
members = [{members}]
"""


def journal(sw: SwitchProcess) -> list[dict[str, Any]]:
    out = sw.pbx("journal", "--queue", "q", "--limit", "500", "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def agents(sw: SwitchProcess) -> dict[str, dict[str, Any]]:
    out = sw.pbx("agents", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return {a["extension"]: a for a in json.loads(out.stdout)["agents"]}


def test_reload_with_callers_waiting_then_kill_and_restart(tmp_path: Path) -> None:
    script = write_script(tmp_path / "q.sh", 'case "$PBX_EVENT" in incoming) echo "queue q";; '
                          'queue) echo hangup;; esac\n', "/bin/sh")
    port = free_port()
    dir = tmp_path / "switch"
    dir.mkdir()
    config = write_config(dir, port=port, users=USERS, routes=textwrap.dedent(
        QUEUE.format(script=script, members='"1002"')))
    sw = start_switch(dir, config, port)
    try:
        waiting = Uac(sw.port, user="5550500")
        resp = waiting.call("80")
        assert resp is not None and resp.status == 200
        poll(lambda: any(r["event"] == "ENTERQUEUE" for r in journal(sw)), timeout=5)
        # A new member while the caller waits: the reload keeps the caller where it is.
        config.write_text(config.read_text().replace('members = ["1002"]',
                                                     'members = ["1002", "1003"]'))
        reload = sw.pbx("reload")
        assert reload.returncode == 0 and "1003" in reload.stdout, reload.stdout + reload.stderr
        with Callees() as callees:
            phone = callees.start(SippCallee("queue_agent.xml", sw.port, "1003",
                                             tmp_path / "a1003"))
            assert sw.pbx("agent", "login", "1003").returncode == 0
            assert waiting.wait_bye(15) is not None  # served by the member added live
            assert phone.wait() == 0, phone.logs()
        waiting.close()
        cdr = closed_cdr(sw, waiting.call_id)
        assert cdr["queues"][0]["agent"] == "1003"
        events = [r["event"] for r in journal(sw) if r["callid"] == cdr["call_id"]]
        assert events == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
        assert any(r["event"] == "ADDMEMBER" and r["agent"] == "1003" for r in journal(sw))

        # 1002 logs in and pauses (no phone: never rung); a caller waits; the switch dies.
        assert sw.pbx("agent", "login", "1002").returncode == 0
        assert sw.pbx("agent", "pause", "1002", "--reason", "lunch").returncode == 0
        left = Uac(sw.port, user="5550501")
        resp = left.call("80")
        assert resp is not None and resp.status == 200
        poll(lambda: sum(r["event"] == "ENTERQUEUE" for r in journal(sw)) == 2, timeout=5)
        os.killpg(sw.proc.pid, signal.SIGKILL)
        sw.proc.wait(5)
        left.close()
    finally:
        sw.stop()
    sw = start_switch(dir, config, port)
    try:
        rows = [r for r in journal(sw) if r["event"] == "INTERRUPTED"]
        assert len(rows) == 1 and rows[0]["queuename"] == "q"
        back = agents(sw)
        assert back["1002"]["state"] == "paused" and back["1002"]["reason"] == "lunch"
        assert back["1003"]["state"] == "available"
        # A clean stop with a caller waiting: BYE to the caller, SHUTDOWN in the journal.
        last = Uac(sw.port, user="5550502")
        resp = last.call("80")
        assert resp is not None and resp.status == 200
        poll(lambda: sum(r["event"] == "ENTERQUEUE" for r in journal(sw)) == 3, timeout=5)
        sw.proc.send_signal(signal.SIGTERM)
        assert last.wait_bye(10) is not None
        last.close()
        sw.proc.wait(10)
    finally:
        sw.stop()
    sw = start_switch(dir, config, port)
    try:
        cdr = closed_cdr(sw, last.call_id)
        assert cdr["hangup_by"] == "shutdown" and cdr["queues"][0]["outcome"] == "shutdown"
        rows = [r["event"] for r in journal(sw) if r["callid"] == cdr["call_id"]]
        assert rows == ["ENTERQUEUE", "SHUTDOWN"]  # closed by the stop, not by the restart
    finally:
        sw.stop()
