"""`pbx phone` against a real `pbx run` with the demo IVR: a call that hears the welcome and
sends a digit exits 0 with a WAV that has energy; a wrong password exits "not registered"; a
number with no route exits "not answered"; `pbx phone answer` answers a call another `pbx
phone` makes through a dial route.  Each `pbx phone` is a real process (pyVoIP inside its own
child), bounded by its timeout and the test's."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.cli.phone_cmd import EXIT_NOT_ANSWERED, EXIT_NOT_REGISTERED, EXIT_OK
from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)

pytestmark = pytest.mark.peer
USERS = {"1001": "pw1001", "1002": "pw1002"}
ROUTES = f"""
[[routes]]
match = "^100$"
script = "{REPO / 'scripts' / 'ivr.py'}"

[[routes]]
match = "^1002$"
script = "{{s}}/dial.sh"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    dir = tmp_path_factory.mktemp("phone")
    s = dir / "s"
    s.mkdir()
    (s / "dial.sh").write_text('#!/bin/sh\ncase "$PBX_EVENT" in incoming) '
                               'echo "dial 1002 timeout=15";; esac\n')
    (s / "dial.sh").chmod(0o755)
    port = free_port()
    config = write_config(dir, port=port, routes=ROUTES.format(s=s), users=USERS)
    sw = start_switch(dir, config, port)
    yield sw
    sw.stop()


def phone(site: SwitchProcess, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pbxcore", "phone", *args,
                           "--config", str(site.config)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def wav_rms(path: Path) -> float:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        data = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


def test_call_hears_the_ivr_sends_a_digit_and_records(site: SwitchProcess,
                                                      tmp_path: Path) -> None:
    wav = tmp_path / "heard.wav"
    got = phone(site, "call", "100", "--user", "1001", "--password", "pw1001", "--digits", "1",
                "--expect-audio", "--record", str(wav), "--timeout", "8", "--json")
    assert got.returncode == EXIT_OK, got.stdout + got.stderr
    result = json.loads(got.stdout)
    assert result["outcome"] == "ok" and result["audio_heard"] and result["digits_sent"] == "1"
    assert wav_rms(wav) > 300  # the welcome prompt, not silence
    # The digit reached the IVR: its gather event came back with PBX_DIGITS=1.
    call_id = next(c["call_id"] for c in json.loads(site.pbx("cdr", "--json").stdout)
                   if c["called"] == "100")
    entries = json.loads(site.pbx("trace", call_id, "--json").stdout)
    gathers = [e for e in entries if '"event": "gather"' in json.dumps(e)
               and '"PBX_DIGITS": "1"' in json.dumps(e)]
    assert gathers, json.dumps(entries)[:3000]


def test_summary_line_and_wrong_password(site: SwitchProcess) -> None:
    got = phone(site, "call", "100", "--user", "1001", "--password", "nope")
    assert got.returncode == EXIT_NOT_REGISTERED, got.stdout + got.stderr
    assert got.stdout.startswith("NOT REGISTERED: 1001 -> 100 at 127.0.0.1:")
    assert len(got.stdout.splitlines()) == 1


def test_no_route_is_not_answered(site: SwitchProcess) -> None:
    got = phone(site, "call", "555", "--user", "1001", "--password", "pw1001", "--timeout", "5")
    assert got.returncode == EXIT_NOT_ANSWERED, got.stdout + got.stderr
    assert got.stdout.startswith("NOT ANSWERED: 1001 -> 555")


def test_answer_takes_a_call(site: SwitchProcess) -> None:
    agent = subprocess.Popen([sys.executable, "-m", "pbxcore", "phone", "answer", "--user",
                              "1002", "--password", "pw1002", "--timeout", "40", "--max-call",
                              "20", "--json", "--config", str(site.config)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        # The caller calls until the agent phone is registered and answers (bounded tries).
        for _ in range(5):
            caller = phone(site, "call", "1002", "--user", "1001", "--password", "pw1001",
                           "--timeout", "6", "--json")
            if caller.returncode == EXIT_OK:
                break
        assert caller.returncode == EXIT_OK, caller.stdout + caller.stderr
        out, err = agent.communicate(timeout=40)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate(timeout=5)
    assert agent.returncode == EXIT_OK, out + err
    result = json.loads(out)
    assert result["mode"] == "answer" and result["answered"]
    assert result["ended_by"] == "remote"  # the caller's phone hung up after its 6 s
