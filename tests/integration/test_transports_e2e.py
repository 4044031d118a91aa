"""Worker and webhook routes through a real `pbx run`: a raw SIP/RTP caller, the contract app as
a worker pool and behind a signed webhook (a separate server process), CDRs and traces read back
with `pbx cdr` / `pbx trace`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac

APP = Path(__file__).parent / "contract_app"
SECRET = "e2e-secret"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    dir = tmp_path_factory.mktemp("transports")
    hook = subprocess.Popen([sys.executable, str(APP / "http_server.py"), SECRET],
                            stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert hook.stdout is not None
        hook_port = int(hook.stdout.readline())
        port = free_port()
        routes = f"""
[[routes]]
match = "^600$"
worker = "{APP / 'worker.py'}"
workers = 2
public = true
timeout = 3
fallback = ["play sorry", "hangup"]

[[routes]]
match = "^601$"
url = "http://127.0.0.1:{hook_port}/pbx"
secret = "{SECRET}"
public = true
timeout = 3
fallback = ["play sorry", "hangup"]

[[routes]]
match = "^602$"
url = "http://127.0.0.1:{hook_port}/pbx"
secret = "not the server's secret"
public = true
timeout = 3
fallback = ["play sorry", "hangup"]
"""
        config = write_config(dir, port=port, routes=routes, scripts=APP)
        sw = start_switch(dir, config, port)
        try:
            yield sw
        finally:
            sw.stop()
    finally:
        os.killpg(hook.pid, signal.SIGTERM)
        hook.wait(5)
        if hook.stdout is not None:
            hook.stdout.close()


def _call(sw: SwitchProcess, called: str, user: str, digits: str | None) -> dict[str, Any]:
    uac = Uac(sw.port, user=user)
    try:
        resp = uac.call(called)
        assert resp is not None and resp.status == 200
        uac.rtp.drain(0.3)
        assert uac.rtp.packets, "no RTP after answer"
        if digits:
            uac.rtp.send_dtmf(digits)
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = sw.pbx("cdr", "--json", "--limit", "20")
        cdrs = [c for c in json.loads(out.stdout) if c["caller"] == user and c["called"] == called]
        if cdrs and cdrs[0]["end"]:
            cdr: dict[str, Any] = cdrs[0]
            return cdr
        time.sleep(0.1)
    raise AssertionError("CDR not closed")


@pytest.mark.parametrize("called", ["600", "601"])
def test_call_is_answered_by_worker_and_webhook(site: SwitchProcess, called: str) -> None:
    cdr = _call(site, called, "1001", "1")
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "script"
    assert cdr["script_errors"] == []
    assert cdr["vars"]["env_caller"] == "1001" and cdr["vars"]["env_event"] == "incoming"
    trace = json.loads(site.pbx("trace", cdr["call_id"], "--json").stdout)
    runs = [e["data"] for e in trace if e["kind"] == "script"]
    assert [r["event"] for r in runs] == ["incoming", "gather", "hangup"]
    assert all(r["error"] is None for r in runs)


@pytest.mark.parametrize("called,error", [
    ("600", "worker closed its output (exit status 3)"), ("601", "HTTP 500"),
    ("602", "HTTP 401")])
def test_failing_transport_gives_the_fallback(site: SwitchProcess, called: str,
                                              error: str) -> None:
    user = "crash" if called != "602" else "1002"
    cdr = _call(site, called, user, None)  # the fallback answers to play "sorry", then hangs up
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "switch"
    assert cdr["script_errors"] and error in cdr["script_errors"][0]
    if called == "600":  # the pool restarted the worker: the next call is served normally
        assert _call(site, "600", "1001", "1")["script_errors"] == []
