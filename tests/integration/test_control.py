"""The control socket against a real running switch (`pbx run` in a child process): status,
registrations of a real REGISTER, live calls from a real caller, `pbx hangup` (BYE after
answer, 487 before), a bridged call showing its agent, `pbx reload` of a changed and of a broken
pbx.toml, a second switch refused, and the in-process start_switch(control=True) path.  The CLI
runs in-process (CliRunner) and, for the commands an operator types most, as a real `pbx`
process."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pbxcore.cli.main import main
from pbxcore.config import load_config
from pbxcore.server import start_switch as start_in_process
from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac
from tests.integration.uas import Phone

USERS = {"1001": "pw1001", "1002": "pw1002"}
HOSTILE = "[red]Eve[/red]\x1b[2J"  # rich markup and a clear-screen sequence in a display name


def script(dir: Path, name: str, body: str) -> Path:
    path = dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


ROUTES = """
[[routes]]
match = "^1$"
script = "{s}/wait.sh"
public = true
timeout = 20

[[routes]]
match = "^2$"
script = "{s}/dial.sh"
public = true

[[routes]]
match = "^3$"
script = "{s}/slow.sh"
public = true
timeout = 20
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    dir = tmp_path_factory.mktemp("control")
    s = dir / "s"
    s.mkdir()
    script(s, "wait.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo "wait 30";; esac\n')
    script(s, "dial.sh", 'case "$PBX_EVENT" in incoming) echo "dial 1002 timeout=10";; esac\n')
    # Decides slowly: the caller hears ringing all the while (the call is not answered).
    script(s, "slow.sh", 'case "$PBX_EVENT" in incoming) sleep 15; echo hangup;; esac\n')
    port = free_port()
    # A trunk that does not register (127.0.0.2: our callers on 127.0.0.1 are not trunk traffic).
    trunk = '[[trunks]]\nname = "provider"\nhost = "127.0.0.2"\nregister = false\n'
    config = write_config(dir, port=port, routes=ROUTES.format(s=s), scripts=s, users=USERS,
                          extra=trunk)
    # --no-watch: the reload test must see `pbx reload` do the reloading, not the watcher.
    sw = start_switch(dir, config, port, args=("--no-watch",))
    yield sw
    sw.stop()
    assert not (dir / "var" / "pbx.sock").exists()  # removed at stop


def cli(sw: SwitchProcess, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(sw.config)], env={"COLUMNS": "80"})


def asked(sw: SwitchProcess, *args: str) -> Any:
    result = cli(sw, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def until(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def live(sw: SwitchProcess, called: str, state: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        calls = asked(sw, "calls")["calls"]
        return next((c for c in calls if c["called"] == called and c["state"] == state), None)
    return until(find)  # type: ignore[no-any-return]


def cdr_of(sw: SwitchProcess, call_id: str) -> dict[str, Any]:
    def closed() -> dict[str, Any] | None:
        rows = asked(sw, "cdr", "--limit", "20")
        row = next((r for r in rows if r["call_id"] == call_id), None)
        return row if row is not None and row["end"] is not None else None
    return until(closed)  # type: ignore[no-any-return]


def test_status_from_a_real_pbx_process(site: SwitchProcess) -> None:
    sock = site.dir / "var" / "pbx.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    done = site.pbx("status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pbxcore 0.1.0, pid ")
    assert f"control  {sock}" in done.stdout and "queues   none" in done.stdout
    assert "trunks   provider: not registering" in done.stdout
    status = json.loads(site.pbx("status", "--json").stdout)
    assert status["pid"] == site.proc.pid and status["control"] == str(sock)
    assert status["store"]["ok"] is True and status["queues"] is None
    assert f"udp:127.0.0.1:{site.port}" in status["listen"]
    assert status["trunks"] == [{"name": "provider", "status": "not registering"}]


def test_queues_without_an_acd_say_so(site: SwitchProcess) -> None:
    result = cli(site, "queues")
    assert (result.exit_code, result.stderr) == (1, "pbx: no queues configured\n")


def test_registrations_show_the_phone_and_its_user_agent(site: SwitchProcess) -> None:
    phone = Phone(site.port, "1002", USERS["1002"])
    try:
        assert phone.register(expires=300, user_agent="DeskPhone/1.0 \x07[b]x[/b]") == 200
        [row] = asked(site, "registrations")["registrations"]
        assert (row["extension"], row["transport"], row["user_agent"]) == (
            "1002", "udp", "DeskPhone/1.0 \x07[b]x[/b]")
        assert row["contact"] == f"sip:1002@127.0.0.1:{phone.port}"
        assert row["source"] == f"127.0.0.1:{phone.port}" and 290 <= row["expires"] <= 300
        table = cli(site, "registrations").stdout
        assert "\x07" not in table and "\\x07[b]x[/b]" in "".join(table.split())
    finally:
        phone.close()
    assert asked(site, "registrations") == {"registrations": []}
    assert cli(site, "registrations").stdout == "no phones registered\n"


def test_a_live_call_is_shown_and_hung_up_by_pbx_hangup(site: SwitchProcess) -> None:
    uac = Uac(site.port, display=HOSTILE)
    try:
        resp = uac.call("1")
        assert resp is not None and resp.status == 200
        call = live(site, "1", "waiting")
        assert (call["caller"], call["caller_name"], call["route"], call["script"]) == (
            "1001", HOSTILE, "^1$", "wait.sh")
        assert call["answered"] is True and call["detail"] == "30" and call["agent"] is None
        table = cli(site, "calls").stdout
        assert call["call_id"] in table and "\x1b" not in table
        assert all(len(line) <= 80 for line in table.splitlines())
        done = site.pbx("hangup", call["call_id"])  # a real `pbx` process
        assert (done.returncode, done.stdout) == (0, f"hung up {call['call_id']} (BYE sent)\n")
        assert uac.wait_bye(5) is not None
    finally:
        uac.close()
    cdr = cdr_of(site, call["call_id"])
    assert (cdr["hangup_by"], cdr["disposition"]) == ("switch", "answered")
    assert all(c["call_id"] != call["call_id"] for c in asked(site, "calls")["calls"])


def test_hangup_before_answer_sends_487(site: SwitchProcess) -> None:
    uac = Uac(site.port)
    try:
        uac.start_invite("3")
        call = live(site, "3", "ringing")
        assert call["answered"] is False and call["script"] == "slow.sh"
        assert asked(site, "hangup", call["call_id"])["sent"] == "487"
        final = uac.final(5)
        assert final is not None and final.status == 487
    finally:
        uac.close()
    cdr = cdr_of(site, call["call_id"])
    assert (cdr["hangup_by"], cdr["hangup_code"]) == ("switch", 487)


def test_a_bridged_call_shows_its_agent_and_hangup_ends_both_legs(site: SwitchProcess) -> None:
    phone = Phone(site.port, "1002", USERS["1002"], "answer")
    uac = Uac(site.port)
    try:
        assert phone.register() == 200
        phone.start()
        resp = uac.call("2")
        assert resp is not None and resp.status == 200
        call = live(site, "2", "bridged")
        assert (call["agent"], call["detail"]) == ("1002", "1002")
        assert "bridged to" in cli(site, "calls").stdout
        assert cli(site, "hangup", call["call_id"]).exit_code == 0
        assert uac.wait_bye(5) is not None
        until(lambda: phone.seen.byes_received >= 1)
    finally:
        uac.close()
        phone.close()
    cdr = cdr_of(site, call["call_id"])
    assert cdr["hangup_by"] == "switch" and cdr["legs"][0]["target"] == "1002"


def test_hangup_while_dialling_cancels_the_ringing_phone(site: SwitchProcess) -> None:
    phone = Phone(site.port, "1002", USERS["1002"], "ring")  # rings, never answers
    uac = Uac(site.port)
    try:
        assert phone.register() == 200
        phone.start()
        uac.start_invite("2")
        call = live(site, "2", "dialling")
        assert call["detail"] == "1002" and call["answered"] is False
        assert asked(site, "hangup", call["call_id"])["sent"] == "487"
        final = uac.final(5)
        assert final is not None and final.status == 487
        until(lambda: phone.seen.cancels >= 1)  # the agent's phone stops ringing
    finally:
        uac.close()
        phone.close()
    cdr = cdr_of(site, call["call_id"])
    assert cdr["hangup_by"] == "switch" and cdr["legs"][0]["disposition"] == "canceled"


def test_hangup_of_an_unknown_call(site: SwitchProcess) -> None:
    result = cli(site, "hangup", "NOSUCHCALL")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "pbx: no live call NOSUCHCALL (see pbx calls)\n"
    assert json.loads(cli(site, "hangup", "NOSUCHCALL", "--json").stdout)["code"] == "not_found"


def test_reload_prints_changes_and_refuses_a_broken_config(site: SwitchProcess) -> None:
    original = site.config.read_text()
    try:
        site.config.write_text(original.replace("timeout = 20", "timeout = 7", 1))
        result = cli(site, "reload")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            f"config reloaded ({site.config}): 1 change", "  route ^1$: timeout 20.0 -> 7.0"]
        assert cli(site, "reload").stdout == f"config reloaded ({site.config}): no changes\n"

        broken = original.replace('realm = "pbxcore-test"', 'realm = "pbxcore-test"\nbogus = 1')
        site.config.write_text(broken)
        line = broken.splitlines().index("bogus = 1") + 1
        done = site.pbx("reload")  # a real `pbx` process
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.splitlines() == [
            f"{site.config}:{line}: unknown key 'bogus' in [sip]",
            "pbx: config refused; the running config stays"]
        as_json = json.loads(site.pbx("reload", "--json").stdout)
        assert as_json["code"] == "config_invalid" and len(as_json["details"]) == 1
        # The running config stayed: calls are still answered by it.
        uac = Uac(site.port)
        try:
            resp = uac.call("1")
            assert resp is not None and resp.status == 200
            call = live(site, "1", "waiting")
            assert cli(site, "hangup", call["call_id"]).exit_code == 0
        finally:
            uac.close()
    finally:
        site.config.write_text(original)
    assert cli(site, "reload").stdout.splitlines()[1:] == ["  route ^1$: timeout 7.0 -> 20.0"]


def test_a_second_switch_on_the_same_socket_is_refused(site: SwitchProcess) -> None:
    done = subprocess.run([sys.executable, "-m", "pbxcore", "run", "--config", str(site.config)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    sock = site.dir / "var" / "pbx.sock"
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"pbx: a switch is already running with the control socket {sock}")
    assert site.proc.poll() is None and cli(site, "status").exit_code == 0


async def test_in_process_switch_serves_the_socket_until_stopped(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    script(s, "wait.sh", 'echo "wait 1"\n')
    port = free_port()
    config_path = write_config(tmp_path, port=port, scripts=s, routes=f"""
[[routes]]
match = "^1$"
script = "{s}/wait.sh"
public = true
""")
    recordings = 'recordings = "var/recordings"'
    text = config_path.read_text().replace(recordings, recordings + '\ncontrol = "run/ctl.sock"')
    config_path.write_text(text)
    config = load_config(config_path)
    assert config.paths.control == tmp_path / "run" / "ctl.sock"
    running = await start_in_process(config, control=True)
    try:
        assert running.control.listening
        result = await asyncio.to_thread(
            CliRunner().invoke, main, ["status", "--json", "--config", str(config_path)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["control"] == str(tmp_path / "run" / "ctl.sock")
    finally:
        await running.stop()
    assert not (tmp_path / "run" / "ctl.sock").exists()
    result = await asyncio.to_thread(CliRunner().invoke, main,
                                     ["calls", "--config", str(config_path)])
    assert result.exit_code == 3 and "the switch is not running" in result.stderr
