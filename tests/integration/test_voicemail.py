"""Voicemail end to end: a real `pbx run`, a real script, a raw SIP/RTP caller, a real notify
program; the index read back with `pbx voicemail` (list, play, mark, delete)."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.media.wav import read_wav
from pbxcore.rtp.tones import tone
from tests.integration.switch_harness import (
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac, rms

SCRIPT = """echo "$PBX_EVENT|$PBX_RESULT|$PBX_RECORDING|$PBX_RECORDING_SECONDS|$PBX_VOICEMAIL_BOX" \
>> "$(dirname "$0")/events.log"
case "$PBX_EVENT" in
  incoming) echo "voicemail $BOX greeting=beep beep=no max=8";;
  voicemail) echo hangup;;
esac
"""
# The notify program writes the event it got (env and stdin JSON) where the test can read it.
NOTIFY = """env | grep '^PBX_' | sort > "$(dirname "$0")/notify-$PBX_VOICEMAIL_ID.env"
cat > "$(dirname "$0")/notify-$PBX_VOICEMAIL_ID.json"
"""


def executable(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    dir = tmp_path_factory.mktemp("voicemail")
    s = dir / "s"
    s.mkdir()
    executable(s / "vm.sh", SCRIPT)
    executable(s / "notify.sh", NOTIFY)
    port = free_port()
    routes = "".join(f"""
[[routes]]
name = "vm-{box}"
match = "^{number}$"
script = "{s / 'vm.sh'}"
public = true
env = {{ BOX = "{box}" }}
""" for number, box in (("600", "sales"), ("601", "tiny")))
    extra = f"""
[[voicemail]]
box = "sales"
owners = ["1001"]
notify = "{s / 'notify.sh'}"
email = "sales@example.com"
min_seconds = 0.5

[[voicemail]]
box = "tiny"
max_messages = 1
"""
    config = write_config(dir, port=port, routes=routes, scripts=s, extra=extra)
    sw = start_switch(dir, config, port)
    yield sw
    sw.stop()


def events(sw: SwitchProcess) -> list[list[str]]:
    path = sw.dir / "s" / "events.log"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return [line.split("|") for line in lines]


def wait_events(sw: SwitchProcess, count: int, timeout: float = 10) -> list[list[str]]:
    path = sw.dir / "s" / "events.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            break
        time.sleep(0.05)
    return events(sw)


def listed(sw: SwitchProcess, box: str, *args: str) -> list[dict]:
    out = sw.pbx("voicemail", "list", box, "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def leave(sw: SwitchProcess, number: str, audio_ms: int, *, end: str = "#") -> None:
    uac = Uac(sw.port)
    try:
        assert (resp := uac.call(number)) is not None and resp.status == 200
        uac.rtp.drain(0.6)  # the greeting (a beep here) plays before recording starts
        if audio_ms:
            uac.rtp.send_audio(tone(700, audio_ms, amplitude=8000))
        if end == "#":
            uac.rtp.send_dtmf("#")
        if end in ("#", "switch"):
            assert uac.wait_bye(10) is not None
        else:
            assert (bye := uac.bye()) is not None and bye.status == 200
    finally:
        uac.close()


def test_message_saved_indexed_notified_then_played_and_deleted(site: SwitchProcess) -> None:
    sw = site
    before = {m["id"] for m in listed(sw, "sales")}
    leave(sw, "600", 1500)
    (incoming, vm, hangup) = wait_events(sw, 3)
    assert incoming[0] == "incoming" and hangup[0] == "hangup"
    assert vm[:2] == ["voicemail", "saved"] and vm[4] == "sales"
    recording, seconds = vm[2], float(vm[3])
    assert recording.startswith("voicemail/sales/") and 1.0 < seconds < 3.0
    wav = sw.dir / "var" / "recordings" / recording
    pcm = read_wav(wav)
    assert 1.0 < len(pcm) / 16000 < 3.0 and rms(pcm) > 2000  # the caller's tone, recorded

    (message,) = [m for m in listed(sw, "sales") if m["id"] not in before]
    assert (message["recording"], message["status"], message["caller"]) == (
        recording, "new", "1001")
    assert abs(message["seconds"] - seconds) < 0.01

    env_file = sw.dir / "s" / f"notify-{message['id']}.env"
    deadline = time.monotonic() + 10
    while not env_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert env["PBX_EVENT"] == "voicemail_left" and env["PBX_RECORDING"] == recording
    assert env["PBX_VOICEMAIL_BOX"] == "sales" and env["PBX_VOICEMAIL_NEW"] == str(
        len(before) + 1)
    assert env["PBX_VOICEMAIL_EMAIL"] == "sales@example.com"
    stdin = json.loads((sw.dir / "s" / f"notify-{message['id']}.json").read_text())
    assert stdin["event"] == "voicemail_left" and stdin["voicemail_id"] == str(message["id"])

    out = sw.dir / "copy.wav"
    played = sw.pbx("voicemail", "play", "sales", str(message["id"]), "--out", str(out))
    assert played.returncode == 0, played.stderr
    assert out.read_bytes() == wav.read_bytes()
    assert [m["status"] for m in listed(sw, "sales") if m["id"] == message["id"]] == ["heard"]
    marked = sw.pbx("voicemail", "mark", "sales", str(message["id"]), "new")
    assert marked.returncode == 0, marked.stderr
    assert [m["status"] for m in listed(sw, "sales") if m["id"] == message["id"]] == ["new"]
    deleted = sw.pbx("voicemail", "delete", "sales", str(message["id"]))
    assert deleted.returncode == 0, deleted.stderr
    assert message["id"] not in {m["id"] for m in listed(sw, "sales")}
    assert [m["status"] for m in listed(sw, "sales", "--all") if m["id"] == message["id"]] == [
        "deleted"]
    assert not wav.exists()


def test_too_short_is_not_kept(site: SwitchProcess) -> None:
    sw = site
    before = listed(sw, "sales")
    leave(sw, "600", 0)
    vm = wait_events(sw, 3)[1]
    assert vm[:3] == ["voicemail", "too_short", ""] and float(vm[3]) < 0.5
    assert listed(sw, "sales") == before


def test_caller_hangs_up_mid_message_kept_and_full_box(site: SwitchProcess) -> None:
    sw = site
    leave(sw, "601", 1200, end="bye")
    incoming, vm, hangup = wait_events(sw, 3)
    assert vm[:2] == ["voicemail", "hangup"] and vm[2].startswith("voicemail/tiny/")
    assert hangup[:2] == ["hangup", "caller"]
    (message,) = listed(sw, "tiny")
    assert message["recording"] == vm[2]
    # max_messages = 1: the next caller finds the box full, nothing recorded
    leave(sw, "601", 0, end="switch")
    vm = wait_events(sw, 3)[1]
    assert vm[:3] == ["voicemail", "full", ""]
    assert len(listed(sw, "tiny")) == 1
