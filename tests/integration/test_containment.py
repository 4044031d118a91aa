"""Nothing a script starts outlives its run (issue 9, item 8), against a real `pbx run`: a
double-fork + setsid child holding stdout, a daemon with stdout on /dev/null, and a worker's
daemon when the worker is stopped, are all gone afterwards (checked by pid)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac

# Forks twice with setsid in between, so the grandchild leads its own session: the runner's
# kill of the script's process group cannot reach it. It writes its pid to PIDFILE and sleeps.
DAEMONISE = f"""#!{sys.executable}
import os, sys, time

def daemonise(pidfile, quiet):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if quiet:  # a proper daemon: nothing of ours held open
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
            with open(pidfile + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(pidfile + ".tmp", pidfile)
            time.sleep(60)
        os._exit(0)
    os.wait()
"""

SCRIPT = DAEMONISE + """
if os.environ["PBX_EVENT"] == "incoming":
    daemonise(os.environ["PIDFILE"], os.environ["QUIET"] == "1")
    print("answer")
    print("hangup")
"""

# Daemonises, then waits (bounded) for RELEASE to exist before it answers: its run is still in
# progress while the test runs other calls.
WAITING = DAEMONISE + """
if os.environ["PBX_EVENT"] == "incoming":
    daemonise(os.environ["PIDFILE"], True)
    for _ in range(500):
        if os.path.exists(os.environ["RELEASE"]):
            break
        time.sleep(0.02)
    print("answer")
    print("hangup")
"""

WORKER = DAEMONISE + """
import json
daemonise(os.environ["PIDFILE"], True)
for line in sys.stdin:
    print(json.dumps([{"action": "answer"}, {"action": "hangup"}]), flush=True)
"""


def program(dir: Path, name: str, text: str) -> Path:
    path = dir / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_pid(path: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def leftovers(tmp_path: Path) -> Iterator[list[int]]:
    """Pids a test expects to be gone; any survivor (and any pid a daemon wrote to a pid file
    before the test failed) is killed afterwards, by pid."""
    pids: list[int] = []
    yield pids
    pids += [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    for pid in set(pids):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def site(tmp_path: Path) -> SwitchProcess:
    s = tmp_path / "s"
    s.mkdir()
    script = program(s, "daemonise.py", SCRIPT)
    worker = program(s, "worker.py", WORKER)
    waiting = program(s, "waiting.py", WAITING)
    port = free_port()
    routes = f"""
[[routes]]
match = "^1$"
script = "{script}"
public = true
env = {{ PIDFILE = "{tmp_path / 'holder.pid'}", QUIET = "0" }}

[[routes]]
match = "^2$"
script = "{script}"
public = true
env = {{ PIDFILE = "{tmp_path / 'daemon.pid'}", QUIET = "1" }}

[[routes]]
match = "^4$"
script = "{waiting}"
public = true
timeout = 15
env = {{ PIDFILE = "{tmp_path / 'waiting.pid'}", RELEASE = "{tmp_path / 'release'}" }}

[[routes]]
match = "^3$"
worker = "{worker}"
workers = 1
public = true
env = {{ PIDFILE = "{tmp_path / 'worker-daemon.pid'}" }}
"""
    return start_switch(tmp_path, write_config(tmp_path, port=port, routes=routes, scripts=s),
                        port)


def call(port: int, number: str) -> None:
    uac = Uac(port)
    try:
        resp = uac.call(number)
        assert resp is not None and resp.status == 200
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()


def test_descendants_that_left_the_group_are_killed(tmp_path: Path,
                                                     leftovers: list[int]) -> None:
    sw = site(tmp_path)
    try:
        call(sw.port, "1")  # double fork + setsid, holding the script's stdout
        leftovers.append(holder := read_pid(tmp_path / "holder.pid"))
        call(sw.port, "2")  # a daemon: setsid, stdout on /dev/null
        leftovers.append(daemon := read_pid(tmp_path / "daemon.pid"))
        assert gone(holder) and gone(daemon)
        assert "killed 1 processes a script left running" in sw.log_text()
        call(sw.port, "3")
        leftovers.append(worker_daemon := read_pid(tmp_path / "worker-daemon.pid"))
        assert alive(worker_daemon)  # the worker is still running: its run is not over
    finally:
        assert sw.stop() == 0
    assert gone(worker_daemon)  # the worker was stopped at shutdown: its daemon with it


def test_scripts_run_as_the_configured_user(tmp_path: Path) -> None:
    """`[scripts] user`: the script runs with that user's uid and gid and no supplementary
    groups. As root the test drops to nobody; otherwise it names the current user (the only
    one a non-root switch may use), which must still work."""
    target = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    # The script must be reachable by that user: pytest's tmp_path is private to its owner.
    public = Path(tempfile.mkdtemp(prefix="pbx-user-", dir="/tmp"))
    try:
        public.chmod(0o755)
        script = program(public, "whoami.sh", '#!/bin/sh\ncase "$PBX_EVENT" in incoming)\n'
                         '  echo "set WHO=$(id -u):$(id -g):$(id -G)"; echo answer; echo hangup;;'
                         '\nesac\n')
        script.chmod(0o755)
        port = free_port()
        config = write_config(tmp_path, port=port, scripts=public,
                              extra=f'[scripts]\nuser = "{target.pw_name}"\n', routes=f"""
[[routes]]
match = "^1$"
script = "{script}"
public = true
""")
        sw = start_switch(tmp_path, config, port)
        try:
            call(port, "1")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cdrs = json.loads(sw.pbx("cdr", "--json").stdout)
                if cdrs and cdrs[0]["end"]:
                    break
                time.sleep(0.1)
            assert cdrs[0]["vars"]["WHO"] == f"{target.pw_uid}:{target.pw_gid}:{target.pw_gid}"
        finally:
            sw.stop()
    finally:
        shutil.rmtree(public)


def test_a_run_in_progress_keeps_its_processes_while_others_end(tmp_path: Path,
                                                                leftovers: list[int]) -> None:
    sw = site(tmp_path)
    waiting = Uac(sw.port)
    try:
        waiting.start_invite("4")  # its script daemonises, then waits for the release file
        leftovers.append(kept := read_pid(tmp_path / "waiting.pid"))
        call(sw.port, "2")  # another run ends and sweeps meanwhile
        leftovers.append(daemon := read_pid(tmp_path / "daemon.pid"))
        assert gone(daemon)
        assert alive(kept)  # PBX_RUN_ID of a run still in progress: left alone
        (tmp_path / "release").touch()
        resp = waiting.final(15)
        assert resp is not None and resp.status == 200
        waiting.ack(resp, waiting.invite)  # type: ignore[arg-type]
        assert waiting.wait_bye(10) is not None
        assert gone(kept)  # its own run is over now
    finally:
        waiting.close()
        sw.stop()
