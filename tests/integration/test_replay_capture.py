"""Capture a live call as a fixture and replay it: real `pbx run`, raw SIP/RTP caller, then
`pbx trace ID --fixture`, then `pbx replay` (green), then an edited script (red, with a diff).

The scripts read the event JSON from stdin and print its history, so the replay must hand them
the same history (and variables, env and goto target) as the live switch did.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
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
from tests.integration.uac import Uac

MAIN = r'''#!/usr/bin/python3
import json, os, sys
ev = json.loads(sys.stdin.readline())
hist = ",".join(h["event"] for h in ev["history"]) or "none"
with open(os.path.join(os.path.dirname(__file__), "events.log"), "a") as f:
    f.write(ev["event"] + "\n")
if ev["event"] == "incoming":
    print("answer")
    print(f"set STEP=1 WHO={ev['caller']}")
    print("gather max=2 timeout=5 digit_timeout=1 prompt=beep")
elif ev["event"] == "gather":
    print(f"log main got {ev['digits']} step {os.environ.get('PBX_VAR_STEP')} crm "
          f"{os.environ.get('CRM_DSN')} history {hist}")
    print("set STEP=2")
    print("goto second.py")
elif ev["event"] == "hangup":
    print("log main hangup")
'''

SECOND = r'''#!/usr/bin/python3
import json, os, sys
ev = json.loads(sys.stdin.readline())
hist = ",".join(h["event"] + ":" + h["result"] for h in ev["history"]) or "none"
with open(os.path.join(os.path.dirname(__file__), "events.log"), "a") as f:
    f.write(ev["event"] + "\n")
if ev["event"] == "redirect":
    print(f"log redirected from {ev['result']} history {hist}")
    print("set STEP=3")
    print("gather max=1 timeout=5 prompt=beep")
elif ev["event"] == "gather":
    print(f"log second got {ev['digits']} step {ev['vars'].get('STEP')} history {hist}")
    print("hangup")
elif ev["event"] == "hangup":
    print(f"log hangup by {ev['result']} vars {ev['vars'].get('STEP')} {ev['vars'].get('WHO')} "
          f"history {hist}")
'''


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    dir = tmp_path_factory.mktemp("capture")
    scripts = dir / "scripts"
    scripts.mkdir()
    _write(scripts / "main.py", MAIN)
    _write(scripts / "second.py", SECOND)
    port = free_port()
    routes = f"""
[[routes]]
match = "^600$"
script = "{scripts / 'main.py'}"
public = true
timeout = 4
env = {{ CRM_DSN = "sqlite:///crm.db" }}
fallback = ["hangup"]
"""
    config = write_config(dir, port=port, routes=routes, scripts=scripts)
    sw = start_switch(dir, config, port)
    yield sw, scripts
    sw.stop()


def _wait_for(path: Path, line: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text().splitlines():
            return
        time.sleep(0.05)
    raise AssertionError(f"{line!r} never reached {path}")


def _closed_call(sw: SwitchProcess, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sw.pbx("cdr", "--json", "--limit", "1")
        rows = json.loads(out.stdout) if out.returncode == 0 else []
        if rows and rows[0]["end"]:
            return str(rows[0]["call_id"])
        time.sleep(0.1)
    raise AssertionError("the call's CDR was never closed")


def replay(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pbxcore", "replay", *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_live_call_captured_replays_green_then_red_after_an_edit(
        site: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    sw, scripts = site
    uac = Uac(sw.port)
    try:
        resp = uac.call("600")
        assert resp is not None and resp.status == 200
        uac.rtp.drain(0.3)
        uac.rtp.send_dtmf("42")
        _wait_for(scripts / "events.log", "redirect")
        uac.rtp.drain(0.3)
        uac.rtp.send_dtmf("7")
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    call_id = _closed_call(sw)

    out = tmp_path / "out.json"
    done = sw.pbx("trace", call_id, "--fixture", str(out))
    assert done.returncode == 0, done.stderr
    fixture = json.loads(out.read_text())
    assert fixture["pbxcore_fixture"] == 1
    assert fixture["env"] == {"CRM_DSN": "sqlite:///crm.db"}
    assert fixture["timeout"] == 4
    assert fixture["call"]["call_id"] == call_id and fixture["call"]["called"] == "600"
    assert [s["event"] for s in fixture["steps"]] == [
        "incoming", "gather", "redirect", "gather", "hangup"]
    assert fixture["steps"][1]["digits"] == "42"
    assert fixture["steps"][2]["result"] == "main.py"
    assert fixture["steps"][1]["expect"][0] == (
        "log 'main got 42 step 1 crm sqlite:///crm.db history incoming'")
    assert fixture["steps"][4]["expect"] == [
        "log 'hangup by script vars 3 1001 history "
        "incoming:,gather:ok,redirect:main.py'"]

    green = replay(out)
    assert green.returncode == 0, green.stdout + green.stderr
    assert "1 of 1 fixtures passed" in green.stdout

    # Change what the script says: the same fixture must now fail, naming both sides.
    edited = SECOND.replace('print("hangup")', 'print("play goodbye")\n    print("hangup")')
    _write(scripts / "second.py", edited)
    try:
        red = replay(out, "--junit", tmp_path / "junit.xml")
    finally:
        _write(scripts / "second.py", SECOND)
    assert red.returncode == 1, red.stdout + red.stderr
    assert "FAIL" in red.stdout and "steps[3] gather result=ok digits=7" in red.stdout
    assert "+ play goodbye" in red.stdout and "  hangup" in red.stdout
    assert "--- expected" in red.stdout and "+++ actual" in red.stdout
    junit = (tmp_path / "junit.xml").read_text()
    assert 'failures="1"' in junit and "+ play goodbye" in junit
