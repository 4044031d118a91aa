"""pyVoIP 1.6.8 as a real softphone against `pbx run`: it registers with digest, calls a route,
hears the prompt, sends a 1 kHz tone the switch records, and presses keys (RFC 2833 injected
through its own RTP socket) that a `gather` collects.

The phone runs in a subprocess (tests/peers/pyvoip_phone.py): its threads are not daemons.
"""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, free_rtp_range
from tests.peers.helpers import (
    PASSWORD_1001,
    cdrs,
    closed_cdr,
    read_lines,
    route,
    running_switch,
    script_runs,
    summary,
    trace,
    write_script,
)

pytestmark = pytest.mark.peer

PHONE = Path(__file__).with_name("pyvoip_phone.py")

# answer, a short prompt, 3 s of recording (no beep: the tone must be in the file from the start),
# then up to 3 keys ended by '#'; the keys are read back and the list runs off its end (the
# switch then hangs up, protocol rule 3).
ROUTE_SCRIPT = '''
import os, re
event = os.environ["PBX_EVENT"]
with open({log!r} + "/" + os.environ["PBX_CALL_ID"] + ".events", "a") as f:
    f.write(f"{{event}} {{os.environ.get('PBX_RESULT', '')}} {{os.environ.get('PBX_DIGITS', '')}}\\n")
if event == "incoming":
    print("answer\\nplay your-number-is\\nrecord max=3 beep=no silence=0")
elif event == "record":
    print('gather max=3 timeout=8 finish="#"')
elif event == "gather":
    digits = re.sub("[^0-9]", "", os.environ.get("PBX_DIGITS", ""))
    print(f"say digits {{digits}}" if digits else "play invalid")
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    base = tmp_path_factory.mktemp("pyvoip")
    events = base / "events"
    events.mkdir()
    script = write_script(base / "phone_route.py", ROUTE_SCRIPT.format(log=str(events)))
    routes = route("^500$", script) + "\n" + route("^501$", script, public=True)
    with running_switch(base / "switch", routes) as sw:
        yield sw, events


def run_phone(work: Path, plan: dict[str, Any], timeout: float = 40) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "plan.json").write_text(json.dumps(plan))
    result = work / "result.json"
    with open(work / "phone.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", str(PHONE), str(work / "plan.json"), str(result)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    assert result.exists(), f"the phone wrote no result:\n{(work / 'phone.log').read_text()}"
    return dict(json.loads(result.read_text()))


def wav_stats(path: Path) -> tuple[float, float, float]:
    """(seconds, RMS, zero crossings per second) of an 8 kHz mono 16-bit WAV."""
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        data = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    seconds = len(samples) / 8000
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
    crossings = sum(1 for a, b in zip(samples, samples[1:], strict=False) if (a < 0) != (b < 0))
    return seconds, rms, crossings / max(seconds, 1e-9)


# 500 challenges the INVITE (what a registered phone meets); 501 is public, so media and DTMF are
# checked even while the challenged path has a problem (BUGS.md: 100 Trying before 401).
@pytest.mark.parametrize("number", ["500", "501"], ids=["invite-challenged", "public-route"])
def test_pyvoip_registers_calls_records_and_presses_keys(
        env: tuple[SwitchProcess, Path], tmp_path: Path, number: str) -> None:
    sw, events = env
    low, high = free_rtp_range(20)
    sip_call_ids_before = {c["sip_call_id"] for c in cdrs(sw)}
    result = run_phone(tmp_path / "phone", {
        "server_port": sw.port, "user": "1001", "password": PASSWORD_1001,
        "sip_port": free_port(both=False), "rtp_low": low, "rtp_high": high, "number": number,
        "tone_seconds": 5.0, "dtmf": "42#", "dtmf_at": 5.5, "max_call": 15,
    })
    log = (tmp_path / "phone" / "phone.log").read_text(errors="replace")
    assert result["error"] is None, f"{result['error']}\n{log}"
    assert result["registered"] and result["answered"], result
    assert result["dtmf_sent"], result
    # The switch hung up after reading the keys back (the phone did not have to).
    assert result["ended_by_remote"], result
    # The prompt and the digits read back reached the phone as audio, not silence.
    assert result["loud_frames"] >= 50 and result["rms8"] > 2, result

    calls = [c for c in cdrs(sw) if c["sip_call_id"] not in sip_call_ids_before]
    assert len(calls) == 1, calls
    cdr = closed_cdr(sw, calls[0]["sip_call_id"])
    assert (cdr["caller"], cdr["called"], cdr["disposition"]) == ("1001", number, "answered"), cdr
    assert cdr["script_errors"] == [], cdr

    # The phone's 1 kHz tone is in the recording: about 3 s, loud, ~2000 zero crossings a second.
    assert len(cdr["recordings"]) == 1, cdr
    wav = sw.dir / "var" / "recordings" / cdr["recordings"][0]
    seconds, rms, crossings = wav_stats(wav)
    assert seconds > 1.0, seconds
    assert rms > 1000, rms
    assert 1700 < crossings < 2300, crossings

    # The keys reached the gather: in the trace, and as the script's own PBX_DIGITS.
    entries = trace(sw, cdr["call_id"])
    gathers = script_runs(entries, "gather")
    assert [(g["env"]["PBX_RESULT"], g["env"]["PBX_DIGITS"]) for g in gathers] == [("ok", "42")], \
        summary(entries)
    seen = read_lines(events / f"{cdr['call_id']}.events")
    assert seen[:3] == ["incoming  ", "record maxtime ", "gather ok 42"], seen
    assert seen[-1].startswith("hangup") and sum(x.startswith("hangup") for x in seen) == 1, seen
