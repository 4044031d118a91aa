"""The live commands' CLI layer in-process (CliRunner) against a real control socket served by
ControlServer on its own thread.  The ACD's commands (queues, agents, agent) are served here by
a small in-memory handler with the documented shapes (docs/operations.md), as the ACD service
will; the switch's own commands are tested against a running switch in
tests/integration/test_control.py.  Also: not running, stale socket, permission denied."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from pbxcore.acd.spec import AGENT_STATES
from pbxcore.cli.calls_cmd import render_calls
from pbxcore.cli.control import dumps, printable
from pbxcore.cli.main import main
from pbxcore.cli.registrations_cmd import render_registrations
from pbxcore.control.protocol import BAD_ARGS, CommandError
from pbxcore.control.server import ControlServer

REPO = Path(__file__).resolve().parents[3]
HOSTILE = "[bold]Mallory[/bold]\x1b[2J\u202e"  # markup, clear-screen, right-to-left override


class Acd:
    """In-memory queues and agents with the response shapes of the real ACD service."""

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {
            "1004": {"extension": "1004", "name": "Olga", "state": "available", "reason": None,
                     "since": "2026-01-05T09:00:00+00:00", "state_seconds": 125,
                     "calls_today": 12, "queues": ["sales", "support"]},
            "1005": {"extension": "1005", "name": HOSTILE, "state": "paused",
                     "reason": "lunch", "since": "2026-01-05T12:00:00+00:00",
                     "state_seconds": 3700, "calls_today": 3, "queues": ["support"]},
        }

    async def queues(self, args: Mapping[str, Any]) -> dict[str, Any]:
        counts = {s: 0 for s in AGENT_STATES}
        counts.update(available=1, paused=1, logged_out=2)
        return {"queues": [
            {"name": "sales", "strategy": "longest-idle", "waiting": 3, "longest_wait": 95.0,
             "agents": counts, "answered_today": 40, "abandoned_today": 2, "sl_today": 87.5,
             "service_level": 20, "alert": {"figure": "longest_wait", "value": 95.0,
                                            "threshold": 60, "since": "2026-01-05T12:01:00+00:00"}},
            {"name": "support", "strategy": "ringall", "waiting": 0, "longest_wait": 0,
             "agents": {s: 0 for s in AGENT_STATES}, "answered_today": 0, "abandoned_today": 0,
             "sl_today": None, "service_level": 30, "alert": None},
        ]}

    async def list_agents(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"agents": list(self.agents.values())}

    async def agent(self, args: Mapping[str, Any]) -> dict[str, Any]:
        agent = self.agents.get(str(args.get("extension")))
        if agent is None:
            raise CommandError(BAD_ARGS, f"{args.get('extension')} is not an agent of any queue")
        state = {"login": "available", "logout": "logged_out", "pause": "paused",
                 "unpause": "available"}[args["op"]]
        agent.update(state=state, reason=args.get("reason") if state == "paused" else None)
        return {"extension": agent["extension"], "state": state, "reason": agent["reason"],
                "queue": args.get("queue")}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Acd]]:
    """A ControlServer on a thread's own event loop, with the Acd's commands registered."""
    acd = Acd()
    path = tmp_path / "pbx.sock"
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    server = ControlServer(path)
    server.register("queues", acd.queues)
    server.register("agents", acd.list_agents)
    server.register("agent", acd.agent)
    server.reserve("calls", "not served in this test")

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        for task in asyncio.all_tasks(loop):  # connections that were still being set up
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield path, acd
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def pbx(*args: str | Path, columns: int = 80) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": str(columns)})


def assert_fits(text: str, width: int = 80) -> None:
    assert text and all(len(line) <= width for line in text.splitlines()), text


def test_queues_table_at_80_columns(served: tuple[Path, Acd]) -> None:
    path, _ = served
    result = pbx("queues", "--socket", path)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    lines = result.stdout.splitlines()
    sales = next(i for i, line in enumerate(lines) if "sales" in line)
    assert lines[sales].split()[:6] == ["sales", "3", "1:35", "1", "avail", "40/2"]
    assert "88%/20s" in lines[sales] and "1 pause" in lines[sales + 1]
    assert "longest_wait 1:35 >= 1:00" in lines[sales]
    support = next(line for line in lines if "support" in line)
    assert support.split() == ["support", "0", "0", "s", "none", "in", "0/0"]


def test_queues_json_is_the_handler_result(served: tuple[Path, Acd]) -> None:
    path, acd = served
    result = pbx("queues", "--socket", path, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == asyncio.run(acd.queues({}))


def test_agents_escape_caller_controlled_text(served: tuple[Path, Acd]) -> None:
    path, _ = served
    result = pbx("agents", "--socket", path)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    flat = "".join(result.stdout.split())
    assert "[bold]Mallory[/bold]" in flat and "\\x1b[2J" in flat and "\\u202e" in flat
    assert "paused(lunch)" in flat and "1:01:40" in flat and "1004(Olga)" in flat
    raw = pbx("agents", "--socket", path, "--json").stdout
    assert "\x1b" not in raw and "\u202e" not in raw
    assert json.loads(raw)["agents"][1]["name"] == HOSTILE  # escaped, not lost


def test_agent_login_pause_unpause_logout(served: tuple[Path, Acd]) -> None:
    path, acd = served
    result = pbx("agent", "pause", "1004", "--reason", "break", "--queue", "sales",
                 "--socket", path)
    assert (result.exit_code, result.stdout) == (0, "agent 1004: paused (break)\n")
    assert acd.agents["1004"]["state"] == "paused"
    assert pbx("agent", "unpause", "1004", "--socket", path).stdout == "agent 1004: available\n"
    assert pbx("agent", "logout", "1004", "--socket", path).stdout == "agent 1004: logged_out\n"
    result = pbx("agent", "login", "1004", "--socket", path, "--json")
    assert json.loads(result.stdout) == {"extension": "1004", "state": "available",
                                         "reason": None, "queue": None}
    bad = pbx("agent", "login", "9999", "--socket", path)
    assert (bad.exit_code, bad.stdout) == (1, "")
    assert bad.stderr == "pbx: 9999 is not an agent of any queue\n"
    assert pbx("agent", "dance", "1004", "--socket", path).exit_code == 2


def test_a_refusal_is_one_line_and_exit_1(served: tuple[Path, Acd]) -> None:
    path, _ = served
    result = pbx("calls", "--socket", path)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1, "", "pbx: not served in this test\n")
    as_json = pbx("calls", "--socket", path, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == {"ok": False, "error": "not served in this test",
                                          "code": "not_configured"}


def test_not_running_says_which_path(tmp_path: Path) -> None:
    path = tmp_path / "var" / "pbx.sock"
    result = pbx("status", "--socket", path)
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"pbx: the switch is not running (no control socket at {path})\n"
    # Via --config: the default path beside the store, relative to the config file.
    (tmp_path / "pbx.toml").write_text('[[routes]]\nmatch = "^1$"\nscript = "x"\n')
    result = pbx("queues", "--config", tmp_path / "pbx.toml")
    assert (result.exit_code, result.stderr) == (
        3, f"pbx: the switch is not running (no control socket at {path})\n")


def test_a_stale_socket_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "pbx.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    result = pbx("calls", "--socket", path)
    assert result.exit_code == 3
    assert result.stderr == (f"pbx: the switch is not running (nothing answers at {path}: "
                             "a stale socket)\n")


def test_an_unreadable_config_is_a_usage_error(tmp_path: Path) -> None:
    result = pbx("calls", "--config", tmp_path / "missing.toml")
    assert result.exit_code == 2
    assert result.stderr.startswith("pbx: cannot find the control socket: ")
    assert "(or give --socket PATH)" in result.stderr


def test_permission_denied_has_its_own_line_and_code(served: tuple[Path, Acd],
                                                     tmp_path: Path) -> None:
    # A real second user where we can (root drops to nobody: the 0600 socket refuses it);
    # otherwise the socket's mode is taken away from its own owner.
    path, _ = served
    cmd = [sys.executable, "-m", "pbxcore", "queues", "--socket", str(path)]
    if os.geteuid() == 0:
        os.chmod(tmp_path, 0o755)  # the directory is searchable: only the socket's mode stops it
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    else:
        os.chmod(path, 0)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
        finally:
            os.chmod(path, 0o600)
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == (f"pbx: permission denied on the control socket {path} (run as the "
                           "switch's user, or see [paths] control)\n")


def test_calls_and_registrations_render_at_80_columns() -> None:
    calls = [{"call_id": "01M9192806QQH5PHAHR10YXDP0", "caller": "1001",
              "caller_name": HOSTILE, "called": "100", "route": "^100$",
              "state": "bridged", "detail": "1002", "answered": True,
              "started": "2026-01-05T12:00:00+00:00", "duration": 75.2, "script": "ivr.py",
              "agent": "1002", "language": "en"},
             {"call_id": "01M9192806QQH5PHAHR10YXDP1", "caller": "79991234567",
              "caller_name": "", "called": "200", "route": "^200$", "state": "playing",
              "detail": "welcome", "answered": True, "started": "2026-01-05T12:00:00+00:00",
              "duration": 4, "script": "ivr.py", "agent": None, "language": "ru"}]
    regs = [{"extension": "1002", "name": "Bob", "contact": "sip:1002@192.168.10.20:5062",
             "transport": "udp", "source": "192.168.10.20:5062", "expires": 3599,
             "user_agent": "Yealink SIP-T46S 66.86.0.15 \x07"}]
    shown = []
    for table in (render_calls(calls), render_registrations(regs)):
        console = Console(width=80, record=True, highlight=False, file=io.StringIO())
        console.print(table)
        text = console.export_text()
        assert_fits(text)
        assert "\x1b" not in text and "\x07" not in text
        shown.append(text)
    assert "01M9192806QQH5PHAHR10YXDP0" in shown[0]  # the id stays whole: it is what you hang up
    rows = shown[0].splitlines()
    first = next(i for i, line in enumerate(rows) if "YXDP0" in line)
    assert rows[first].split()[1:] == ["1001", "100", "bridged", "to", "1:15", "1002"]
    head = next(line for line in rows if "call id" in line)
    start, end = head.index("caller"), head.index("called")
    name = "".join(r[start:end].strip() for r in rows[first + 1:first + 6])
    assert name.startswith("[bold]Mallory[/bold]\\x1b[2J\\u202e")  # shown, escaped, whole
    second = next(i for i, line in enumerate(rows) if "YXDP1" in line)
    assert rows[second].split()[1:] == ["79991234567", "200", "playing:", "4", "s", "ivr.py"]
    assert "\\x07" in shown[1]


def test_printable_and_dumps_escape_controls() -> None:
    assert printable("a\x1b[31mb\r\n\u202ec") == "a\\x1b[31mb\\r\\n\\u202ec"
    assert printable("Ёлка ☎") == "Ёлка ☎"
    text = dumps({"name": "x\x85y\u2028z\x7f"})
    assert "\x85" not in text and "\u2028" not in text and "\x7f" not in text
    assert json.loads(text) == {"name": "x\x85y\u2028z\x7f"}


def test_conferences_render_escaped_at_80_columns() -> None:
    from pbxcore.cli.conference_cmd import render_conferences

    rooms = [{"room": "standup", "seconds": 700.0, "members": [
        {"member": 1, "call_id": "01M91D27XV810QK2AHQXEQ0HFH", "caller": "1001",
         "moderator": True, "muted": False, "role": "party", "seconds": 725.0},
        {"member": 3, "call_id": "01M91D289ZG77FB2ST27NF135F", "caller": HOSTILE,
         "moderator": False, "muted": True, "role": "party", "seconds": 12.0}]}]
    console = Console(width=80, record=True, highlight=False, file=io.StringIO())
    console.print(render_conferences(rooms))
    text = console.export_text()
    assert_fits(text)
    assert "\x1b" not in text and "\u202e" not in text
    assert "01M91D27XV810QK2AHQXEQ0HFH" in text and "moderator" in text and "muted" in text
    assert "[bold]Mallory" in text  # markup printed literally, not applied
