"""Voicemail end to end: a real `pbx run`, a real script, a raw SIP/RTP caller, a real notify
program; the index read back with `pbx voicemail` (list, play, mark, delete)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from pbxcore.media.wav import read_wav
from tests.integration.switch_harness import SwitchProcess
from tests.integration.uac import rms
from tests.integration.voicemail_helpers import leave, listed, voicemail_site, wait_events


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    yield from voicemail_site(tmp_path_factory)


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

