"""What the voicemail tests share: a real `pbx run` with voicemail boxes, a raw SIP/RTP caller
that leaves messages, and the index read back with `pbx voicemail list --json`."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.rtp.tones import tone
from tests.integration.switch_harness import (
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac

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


def voicemail_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
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
""" for number, box in (("600", "sales"), ("601", "tiny"), ("603", "1001")))
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

[[voicemail]]
box = "1001"
pin = "4711"
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

