"""The call path end to end: a real `pbx run`, real script processes, a raw SIP/RTP caller.

Each test writes the scripts it needs into tmp_path; every script appends its event name to
events.log so the tests can check "exactly one hangup event, always last".
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.rtp.tones import tone
from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac, rms

LOGGER = 'echo "$PBX_EVENT $PBX_RESULT $PBX_DIGITS" >> "$(dirname "$0")/events.log"\n'


def script(dir: Path, name: str, body: str) -> Path:
    path = dir / name
    path.write_text("#!/bin/sh\n" + LOGGER + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    dir = tmp_path_factory.mktemp("callflow")
    s = dir / "s"
    s.mkdir()
    script(s, "gather.sh", """case "$PBX_EVENT" in
  incoming) echo answer; echo "set SEEN=1"; echo "gather max=2 timeout=5 prompt=beep";;
  gather) echo "say digits ${PBX_DIGITS:-0}"; echo "set LAST=$PBX_DIGITS"; echo hangup;;
esac
""")
    script(s, "record.sh", """case "$PBX_EVENT" in
  incoming) echo answer; echo "record max=5 beep=no finish=#";;
  record) echo "log rec $PBX_RECORDING $PBX_RECORDING_SECONDS"; echo hangup;;
esac
""")
    script(s, "fail.sh", 'echo "boom on stderr" >&2\nexit 3\n')
    script(s, "slow.sh", 'case "$PBX_EVENT" in incoming) sleep 3; echo answer;; esac\n')
    script(s, "busy.sh", 'case "$PBX_EVENT" in incoming) echo "reject busy";; esac\n')
    script(s, "moh.sh", 'case "$PBX_EVENT" in incoming) echo "play moh loop=5";; esac\n')
    script(s, "first.sh", 'case "$PBX_EVENT" in incoming) echo "goto second.sh";; esac\n')
    script(s, "second.sh", 'case "$PBX_EVENT" in redirect) echo "log from $PBX_RESULT"; '
                           'echo "reject 603";; esac\n')
    script(s, "inject.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo hangup;; esac\n')
    port = free_port()
    routes = "".join(f"""
[[routes]]
name = "r{num}-{name.removesuffix('.sh')}"
match = "^{num}$"
script = "{s / name}"
public = {str(public).lower()}
timeout = {timeout}
fallback = ["play beep", "hangup"]
""" for num, name, public, timeout in [
        ("500", "gather.sh", False, 5), ("501", "record.sh", True, 5),
        ("502", "fail.sh", True, 5), ("503", "slow.sh", True, 1), ("504", "busy.sh", True, 5),
        ("505", "moh.sh", True, 5), ("506", "first.sh", True, 5), ("507", "slow.sh", True, 5),
        ("508", "inject.sh", True, 5)])
    config = write_config(dir, port=port, routes=routes, scripts=s)
    sw = start_switch(dir, config, port)
    yield sw, s
    sw.stop()


def events(dir: Path) -> list[str]:
    path = dir / "events.log"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def cdrs(sw: SwitchProcess) -> list[dict]:
    out = sw.pbx("cdr", "--json", "--limit", "5")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_closed(sw: SwitchProcess, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = cdrs(sw)
        if latest and latest[0]["end"]:
            return latest[0]
        time.sleep(0.1)
    raise AssertionError("CDR not closed")


def test_digest_gather_say_and_switch_hangs_up(site: tuple[SwitchProcess, Path]) -> None:
    sw, dir = site
    uac = Uac(sw.port, user="1001", password="secret1001")
    try:
        resp = uac.call("500")
        assert resp is not None and resp.status == 200
        assert b"m=audio" in resp.body and resp.headers.get("Content-Type") == "application/sdp"
        uac.rtp.drain(0.3)
        assert uac.rtp.packets, "no RTP from the switch after answer"
        uac.rtp.send_dtmf("42")
        assert uac.wait_bye(10) is not None
        assert len(uac.rtp.packets) > 20
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "script"
    assert cdr["caller"] == "1001" and cdr["called"] == "500"
    assert cdr["vars"] == {"SEEN": "1", "LAST": "42"}
    assert events(dir) == ["incoming  ", "gather ok 42", "hangup script "]
    trace = json.loads(sw.pbx("trace", cdr["call_id"], "--json").stdout)
    scripts = [e["data"] for e in trace if e["kind"] == "script"]
    assert [s["event"] for s in scripts] == ["incoming", "gather", "hangup"]
    assert scripts[1]["env"]["PBX_DIGITS"] == "42"
    assert scripts[1]["env"]["PBX_VAR_SEEN"] == "1"
    assert json.loads(scripts[1]["stdin"])["digits"] == "42"


def test_wrong_password_and_unknown_user_get_the_same_challenge(site) -> None:  # type: ignore[no-untyped-def]
    sw, _ = site
    answers = []
    for user, password in (("1001", "wrong"), ("9999", "whatever")):
        uac = Uac(sw.port, user=user, password=password)
        try:
            resp = uac.call("500", timeout=3)
            assert resp is not None and resp.status == 401
            answers.append(sorted(h.split("nonce=")[0] for h in
                                  resp.headers.get_all("WWW-Authenticate")))
        finally:
            uac.close()
    assert answers[0] == answers[1]


def test_record_until_finish_key(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    uac = Uac(sw.port)
    try:
        assert (resp := uac.call("501")) is not None and resp.status == 200
        uac.rtp.drain(0.2)
        uac.rtp.send_audio(tone(1000, 1000, amplitude=8000))
        uac.rtp.send_dtmf("#")
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert len(cdr["recordings"]) == 1
    wav = sw.dir / "var" / "recordings" / cdr["recordings"][0]
    from pbxcore.media.wav import read_wav

    pcm = read_wav(wav)
    assert 0.7 < len(pcm) / 16000 < 2.5
    assert rms(pcm) > 2000
    assert events(dir)[1].startswith("record finishkey")


def test_failing_script_runs_fallback_and_is_traced(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    uac = Uac(sw.port)
    try:
        assert (resp := uac.call("502")) is not None and resp.status == 200  # fallback plays
        assert uac.wait_bye(10) is not None
        assert any(p.payload_type == 0 for p in uac.rtp.packets)
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert cdr["script_errors"] and "exit status 3" in cdr["script_errors"][0]
    trace = json.loads(sw.pbx("trace", cdr["call_id"], "--json").stdout)
    assert any("boom on stderr" in (e["data"].get("stderr") or "") for e in trace)
    assert [line.split()[:2] for line in events(dir)] == [["incoming"], ["hangup", "switch"]]


def test_script_deadline_kills_and_falls_back(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    uac = Uac(sw.port)
    started = time.monotonic()
    try:
        assert (resp := uac.call("503")) is not None and resp.status == 200
        assert time.monotonic() - started < 2.5  # timeout = 1 s, not the script's 3 s sleep
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert "timeout" in cdr["script_errors"][0]
    assert [line.split()[0] for line in events(dir)] == ["incoming", "hangup"]


def test_cancel_before_answer(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    uac = Uac(sw.port)
    try:
        uac.start_invite("507")
        msg = uac.recv(3)
        assert msg is not None
        time.sleep(0.3)
        uac.cancel()
        statuses = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and 487 not in statuses:
            m = uac.recv(1)
            if m is not None and hasattr(m, "status"):
                statuses.append(m.status)
        assert 200 in statuses and 487 in statuses
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert cdr["disposition"] == "abandoned" and cdr["hangup_by"] == "caller"
    time.sleep(3.5)  # the incoming run (sleep 3) is killed; the hangup event still comes once
    lines = events(dir)
    assert [line.split()[0] for line in lines].count("hangup") == 1
    assert lines[-1].startswith("hangup")


def test_caller_hangs_up_mid_prompt(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    uac = Uac(sw.port)
    try:
        assert (resp := uac.call("505")) is not None and resp.status == 200
        uac.rtp.drain(0.5)
        bye = uac.bye()
        assert bye is not None and bye.status == 200
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert cdr["hangup_by"] == "caller" and cdr["disposition"] == "answered"
    assert [line.split()[0] for line in events(dir)] == ["incoming", "hangup"]


def test_reject_busy_and_goto(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    for called, status, disposition in (("504", 486, "busy"), ("506", 603, "rejected")):
        uac = Uac(sw.port)
        try:
            resp = uac.call(called)
            assert resp is not None and resp.status == status
        finally:
            uac.close()
        assert wait_closed(sw)["disposition"] == disposition
    lines = events(dir)
    assert "redirect first.sh " in lines
    assert lines[-1] == "hangup script "  # second.sh, now in charge, gets the hangup event


@pytest.mark.parametrize("caller", ["$(touch pwned)", "() { :;}; touch pwned", "1000\nhangup"])
def test_caller_id_cannot_inject(site, caller: str) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    uac = Uac(sw.port, user="x", display=caller.replace("\n", " "))
    uac.user = caller.replace("\n", "%0A").replace(" ", "%20").replace("{", "%7B").replace(
        "}", "%7D").replace("(", "%28").replace(")", "%29").replace(";", "%3B").replace("$", "%24").replace(":", "%3A")
    try:
        resp = uac.call("508")
        assert resp is not None and resp.status == 200
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert cdr["caller"] == caller
    for where in (dir, sw.dir, REPO, Path.cwd()):
        assert not (where / "pwned").exists()
    trace = json.loads(sw.pbx("trace", cdr["call_id"], "--json").stdout)
    env = next(e["data"]["env"] for e in trace if e["kind"] == "script")
    assert "\n" not in env["PBX_CALLER"]
    assert env["PBX_ROUTE"] == "r508-inject"  # the route's name, not its match pattern
    assert json.loads(next(e["data"]["stdin"] for e in trace if e["kind"] == "script"))[
        "caller"] == caller
    events(dir)


def test_sigterm_hangs_up_live_calls(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    script(s, "long.sh", 'case "$PBX_EVENT" in incoming) echo "play moh loop=10";; esac\n')
    port = free_port()
    config = write_config(tmp_path, port=port, routes=f"""
[[routes]]
match = "^1$"
script = "{s / 'long.sh'}"
public = true
""")
    sw = start_switch(tmp_path, config, port)
    uac = Uac(sw.port)
    try:
        assert (resp := uac.call("1")) is not None and resp.status == 200
        uac.rtp.drain(0.3)
        os.kill(sw.proc.pid, signal.SIGTERM)
        assert uac.wait_bye(10) is not None
        assert sw.proc.wait(10) == 0
    finally:
        uac.close()
        sw.stop()
    cdr = json.loads(sw.pbx("cdr", "--json").stdout)[0]
    assert cdr["hangup_by"] == "shutdown" and cdr["end"]


def test_bad_config_is_refused_with_file_and_line(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port, routes="""
[[routes]]
match = "^1$"
scrpit = "nope.sh"
""")
    sw = SwitchProcess(tmp_path, config, port, None, tmp_path / "x")  # type: ignore[arg-type]
    out = sw.pbx("run", timeout=20)
    assert out.returncode != 0
    assert f"{config}:" in out.stderr and "scrpit" in out.stderr


def test_caller_hangs_up_while_recording(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    uac = Uac(sw.port)
    try:
        assert (resp := uac.call("501")) is not None and resp.status == 200
        uac.rtp.drain(0.2)
        uac.rtp.send_audio(tone(800, 600, amplitude=8000))
        assert (bye := uac.bye()) is not None and bye.status == 200
    finally:
        uac.close()
    cdr = wait_closed(sw)
    assert cdr["hangup_by"] == "caller" and len(cdr["recordings"]) == 1
    assert (sw.dir / "var" / "recordings" / cdr["recordings"][0]).stat().st_size > 4000
    assert [line.split()[:2] for line in events(dir)] == [
        ["incoming"], ["record", "hangup"], ["hangup", "caller"]]
