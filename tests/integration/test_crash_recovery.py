"""Crash recovery against a real `pbx run` (issue 9, item 4): after kill -9 mid-call a restart
closes the interrupted call's CDR; a route whose script is missing does not stop the switch."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.test_call_flow import script
from tests.integration.uac import Uac


def cdrs(sw: SwitchProcess) -> list[dict[str, Any]]:
    out = sw.pbx("cdr", "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def wait_for(check: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_kill_9_mid_call_then_restart_closes_the_cdr_as_interrupted(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    script(s, "long.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo "play moh loop=20";; '
                         'esac\n')
    port = free_port()
    routes = f"""
[[routes]]
match = "^1$"
script = "{s / 'long.sh'}"
public = true

[[routes]]
match = "^2$"
script = "{s / 'missing.sh'}"
public = true
fallback = ["reject busy"]
"""
    config = write_config(tmp_path, port=port, routes=routes, scripts=s)
    sw = start_switch(tmp_path, config, port)  # starts although route 2's script is missing
    uac = Uac(port)
    try:
        log = sw.log_text()
        line = config.read_text().splitlines().index(f'script = "{s / "missing.sh"}"') + 1
        assert f"{config}:{line}: warning: script {s / 'missing.sh'} does not exist" in log
        broken = Uac(port)
        try:
            resp = broken.call("2")
            assert resp is not None and resp.status == 486  # the broken route's fallback
        finally:
            broken.close()
        resp = uac.call("1")
        assert resp is not None and resp.status == 200  # the other route is served
        uac.rtp.drain(0.3)
        live = wait_for(lambda: next((c for c in cdrs(sw) if c["sip_call_id"] == uac.call_id
                                      and c["answer"]), None))
        assert live["end"] is None and live["node"]
        os.killpg(sw.proc.pid, signal.SIGKILL)  # the switch and its scripts, mid-call
        sw.proc.wait(10)
        # What the dead run left in the store: the last time anything was known of the call.
        trace = json.loads(sw.pbx("trace", live["call_id"], "--json").stdout)
        assert next(c for c in cdrs(sw) if c["call_id"] == live["call_id"])["end"] is None
    finally:
        uac.close()
        sw.stop()

    again = start_switch(tmp_path, config, port)
    try:
        assert "closed 1 CDRs left open by a previous run" in again.log_text()
        cdr = next(c for c in cdrs(again) if c["call_id"] == live["call_id"])
        last = max([datetime.fromisoformat(e["time"]) for e in trace]
                   + [datetime.fromisoformat(live["answer"])])
        assert datetime.fromisoformat(cdr["end"]) == last
        assert (cdr["disposition"], cdr["hangup_by"]) == ("answered", "interrupted")
        assert cdr["hangup_cause"].startswith("interrupted")
        assert all(c["end"] for c in cdrs(again))  # nothing left open
    finally:
        again.stop()
