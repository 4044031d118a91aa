"""`pbx top` in a real terminal: a detached tmux session runs it against a real `pbx run` with
live SIPp calls on a public route playing hold music; capture-pane shows what an operator sees,
send-keys switches panes and quits, and the shell is back in its normal mode afterwards."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbxcore.cli.main import main
from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.sipp.sipp_peer import RtpSink, SippResult, run_sipp

pytestmark = pytest.mark.peer
TMUX = shutil.which("tmux") or "/usr/bin/tmux"

ROUTES = """
[[routes]]
name = "hotline"
match = "^500$"
script = "{s}/moh.sh"
public = true
timeout = 20

[[routes]]
name = "broken"
match = "^666$"
script = "{s}/fail.sh"
public = true
"""
# Answer, the hold music (10 s), then the switch hangs up (public_call.xml waits 15 s for it).
MOH = '#!/bin/sh\ncase "$PBX_EVENT" in incoming) echo answer; echo "play moh"; echo hangup;; esac\n'



@pytest.fixture
def site(tmp_path: Path) -> Iterator[SwitchProcess]:
    s = tmp_path / "s"
    s.mkdir()
    (s / "moh.sh").write_text(MOH)
    (s / "moh.sh").chmod(0o755)
    (s / "fail.sh").write_text("#!/bin/sh\nexit 3\n")
    (s / "fail.sh").chmod(0o755)
    port = free_port()
    extra = ('[monitor]\ncapacity = 10\n'
             '[[queues]]\nname = "sales"\nmembers = ["1001"]\n'
             '[[trunks]]\nname = "provider"\nhost = "127.0.0.2"\nregister = false\n')
    config = write_config(tmp_path, port=port, routes=ROUTES.format(s=s), scripts=s, extra=extra)
    sw = start_switch(tmp_path, config, port)
    yield sw
    sw.stop()


def tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TMUX, *args], capture_output=True, text=True, timeout=10)


def wait_for(predicate: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_top_in_tmux_shows_live_calls_switches_panes_and_quits(site: SwitchProcess,
                                                                tmp_path: Path) -> None:
    results: list[SippResult] = []
    sinks = [RtpSink() for _ in range(3)]

    def caller(i: int) -> None:
        with sinks[i] as sink:
            results.append(run_sipp("public_call.xml", site.port, tmp_path / f"sipp{i}",
                                    service="500", keys={"sink_port": str(sink.port),
                                                         "from_user": f"0601{i}",
                                                         "from_name": f"Caller {i}"},
                                    timeout=25))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    session = f"pbxtop-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "top.rc"
    stty_file = tmp_path / "stty.txt"
    # The shell runs pbx top, then records its exit status and the terminal mode after it.
    command = (f"{sys.executable} -m pbxcore top --config {site.config}; "
               f"echo $? > {status_file}; stty -a > {stty_file}; sleep 30")
    try:
        assert wait_for(lambda: "3 live calls" in site.pbx("calls").stdout), site.log_text()
        # The raw control command: max_calls cuts the list, not the count.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ctl:
            ctl.settimeout(5)
            ctl.connect(str(site.dir / "var" / "pbx.sock"))
            ctl.sendall(b'{"cmd": "top", "args": {"max_calls": 1}}\n')
            answer = json.loads(ctl.makefile("rb").readline())["result"]
        assert answer["lines_in_use"] == 3 and len(answer["calls"]) == 1
        assert answer["by_route"] == [{"route": "hotline", "calls": 3}]
        assert answer["by_did"] == [{"did": "500", "calls": 3}]
        # stty -a of the same kind of terminal before top ran, to compare with after.
        made = tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(REPO),
                    f"stty -a > {tmp_path / 'stty0.txt'}; {command}")
        assert made.returncode == 0, made.stderr

        def screen() -> str:
            return tmux("capture-pane", "-p", "-t", session).stdout

        assert wait_for(lambda: "3 live calls" in screen()), screen()
        text = screen()
        assert "lines 3/10" in text
        assert "hotline" in text and "500" in text  # by route, by DID
        assert "06010" in text and "06012" in text
        assert len(text.splitlines()) <= 24 and max(len(row) for row in text.splitlines()) <= 80

        tmux("send-keys", "-t", session, "2")
        assert wait_for(lambda: "sales" in screen() and "SL today" in screen()), screen()
        tmux("send-keys", "-t", session, "3")
        assert wait_for(lambda: "1001" in screen() and "logged_out" in screen()), screen()
        tmux("send-keys", "-t", session, "Tab")
        assert wait_for(lambda: "provider" in screen() and "not registering" in screen()), \
            screen()
        tmux("send-keys", "-t", session, "q")
        assert wait_for(status_file.exists), screen()
        assert status_file.read_text().strip() == "0"
        assert wait_for(lambda: stty_file.exists() and stty_file.stat().st_size > 0)
        before = (tmp_path / "stty0.txt").read_text()
        after = stty_file.read_text()
        assert " icanon" in after and " echo" in after  # cooked mode again
        assert _flags(before) == _flags(after)
    finally:
        tmux("kill-session", "-t", session)
        for t in threads:
            t.join(30)
    assert [r.rc for r in results] == [0, 0, 0], "\n".join(r.logs() for r in results)


def _flags(stty: str) -> list[str]:
    """The on/off mode flags of `stty -a` (not the window size, which tmux may change)."""
    return sorted(w for w in stty.split() if w.lstrip("-").isalpha() and ";" not in w)


def test_top_json_and_once_count_script_errors_and_capacity(site: SwitchProcess,
                                                             tmp_path: Path) -> None:
    with RtpSink() as sink:
        # The script fails: the default fallback ends the call; SIPp's own verdict is not
        # what this test is about.
        run_sipp("public_call.xml", site.port, tmp_path / "sipp", service="666",
                 keys={"sink_port": str(sink.port), "from_user": "0601", "from_name": "X"},
                 timeout=5)
    got = site.pbx("top", "--json")
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    assert data["capacity"] == 10 and data["lines_in_use"] == 0
    assert data["script_errors_last_minute"] >= 1
    assert data["calls_per_second"] > 0  # one call start in the last 10 s
    assert [q["name"] for q in data["queues"]] == ["sales"]
    assert data["trunks"] == [{"name": "provider", "status": "not registering"}]
    # In-process too (CliRunner): the same answer through the CLI's own code path.
    inproc = CliRunner().invoke(main, ["top", "--json", "--config", str(site.config)])
    assert inproc.exit_code == 0, inproc.output
    assert json.loads(inproc.output)["capacity"] == 10
    once = site.pbx("top", "--once")  # not a terminal: one frame, then exit 0
    assert once.returncode == 0 and "lines 0/10" in once.stdout
    assert "no live calls" in once.stdout


def test_ctrl_c_also_restores_the_terminal(site: SwitchProcess, tmp_path: Path) -> None:
    session = f"pbxtop-{uuid.uuid4().hex[:8]}"
    status_file, stty0, stty1 = tmp_path / "rc", tmp_path / "stty0", tmp_path / "stty1"
    command = (f"stty -a > {stty0}; {sys.executable} -m pbxcore top --pane trunks --config "
               f"{site.config}; echo $? > {status_file}; stty -a > {stty1}; sleep 30")
    try:
        made = tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(REPO),
                    command)
        assert made.returncode == 0, made.stderr

        def screen() -> str:
            return tmux("capture-pane", "-p", "-t", session).stdout

        assert wait_for(lambda: "not registering" in screen()), screen()
        tmux("send-keys", "-t", session, "C-c")
        assert wait_for(lambda: stty1.exists() and stty1.stat().st_size > 0), screen()
        assert status_file.read_text().strip() == "0"
        assert _flags(stty0.read_text()) == _flags(stty1.read_text())
        assert "pbx top" not in screen()  # the alternate screen is gone
    finally:
        tmux("kill-session", "-t", session)
