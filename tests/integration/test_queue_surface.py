"""The `queue` and `agent` actions through a real `pbx run`: a queue nobody is logged in to
(`empty = "leave"`) answers `queue` with the `empty` outcome at once (position 0: it never
joined), every later event carries PBX_QUEUE*, an unknown queue is a script error, and `agent` is
refused on routes without `agent_control`."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac

SCRIPT = """#!/bin/sh
echo "$PBX_CALLED $PBX_EVENT $PBX_RESULT q=$PBX_QUEUE wait=$PBX_QUEUE_WAIT \
pos=$PBX_QUEUE_POSITION agent=$PBX_AGENT" >> "$(dirname "$0")/events.log"
case "$PBX_EVENT" in
  incoming) echo "queue ${QUEUE} exit_key=0 priority=3";;
  queue) echo "agent login 1001"; echo "agent pause 1001 reason=lunch"; echo "log after agent"
         echo hangup;;
esac
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    dir = tmp_path_factory.mktemp("queues")
    s = dir / "s"
    s.mkdir()
    path = s / "q.sh"
    path.write_text(SCRIPT)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    routes = "".join(f"""
[[routes]]
match = "^{num}$"
script = "{path}"
public = true
env = {{ QUEUE = "{queue}" }}
agent_control = {control}
""" for num, queue, control in [("600", "support", "false"), ("601", "support", "true"),
                                ("602", "nosuch", "false")])
    extra = '[[queues]]\nname = "support"\nmembers = ["1001"]\nempty = "leave"\n'
    config = write_config(dir, port=port, routes=routes, scripts=s, extra=extra)
    sw = start_switch(dir, config, port)
    yield sw, s
    sw.stop()


def call(sw: SwitchProcess, dir: Path, called: str) -> tuple[list[str], dict]:
    uac = Uac(sw.port)
    try:
        resp = uac.call(called)
        assert resp is not None and resp.status == 200  # queue answers (hold music needs media)
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = sw.pbx("cdr", "--json", "--limit", "1")
        cdr = json.loads(out.stdout)[0]
        if cdr["end"] and cdr["called"] == called:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("CDR not closed")
    log = dir / "events.log"
    lines = log.read_text().splitlines()
    log.unlink()
    return lines, cdr


def test_queue_nobody_serves_is_empty_and_agent_needs_permission(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    lines, cdr = call(sw, dir, "600")
    assert lines == [
        "600 incoming  q= wait= pos= agent=",
        "600 queue empty q=support wait=0.000 pos=0 agent=",
        "600 hangup script q=support wait=0.000 pos=0 agent=",  # carried to the hangup
    ]
    refused = "not allowed on this route (set agent_control = true on it)"
    assert cdr["script_errors"] == [f"agent login 1001: agent login 1001: {refused}",
                                    f"agent pause 1001 reason=lunch: agent pause 1001: {refused}"]
    trace = sw.pbx("trace", cdr["call_id"])
    assert "after agent" in trace.stdout

    lines, cdr = call(sw, dir, "601")  # agent_control = true: allowed
    assert lines[1] == "601 queue empty q=support wait=0.000 pos=0 agent="
    assert cdr["script_errors"] == []
    agents = json.loads(sw.pbx("agents", "--json").stdout)["agents"]
    assert [(a["extension"], a["state"], a["reason"]) for a in agents] == [
        ("1001", "paused", "lunch")]


def test_unknown_queue_is_a_script_error_and_empty(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    lines, cdr = call(sw, dir, "602")
    assert lines[1] == "602 queue empty q=nosuch wait=0.000 pos=0 agent="
    assert cdr["script_errors"][0] == "queue nosuch: no such [[queues]] name"


def test_hot_reload_reports_queue_changes_and_new_calls_use_them(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    path = s / "q.sh"
    path.write_text(SCRIPT)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    routes = f'[[routes]]\nmatch = "^600$"\nscript = "{path}"\npublic = true\n' \
             'env = { QUEUE = "vip" }\n'
    extra = '[[queues]]\nname = "support"\nmembers = ["1001"]\n'
    config = write_config(tmp_path, port=port, routes=routes, scripts=s, extra=extra)
    sw = start_switch(tmp_path, config, port)
    try:
        lines, cdr = call(sw, s, "600")
        assert cdr["script_errors"][0] == "queue vip: no such [[queues]] name"
        text = config.read_text()
        config.write_text(text.replace('members = ["1001"]', 'members = ["1001", "1002:2"]\n'
                                       '\n[[queues]]\nname = "vip"\nstrategy = "ringall"\n'
                                       'empty = "leave"'))
        deadline = time.monotonic() + 15
        while "config reloaded" not in sw.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = sw.log_text()
        assert "queue vip: added" in log and "queue support: changed +1002" in log
        assert "1 routes, 2 users, 2 queues" in log
        lines, cdr = call(sw, s, "600")  # the new queue serves new calls
        assert lines[1] == "600 queue empty q=vip wait=0.000 pos=0 agent="
        assert not any("no such" in e for e in cdr["script_errors"])
        bad = config.read_text().replace('strategy = "ringall"', 'strategy = "ring-all"')
        config.write_text(bad)
        deadline = time.monotonic() + 15
        while "config change refused" not in sw.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        line = next(n for n, x in enumerate(bad.splitlines(), 1) if "ring-all" in x)
        assert f"pbx.toml:{line}: strategy 'ring-all' in [[queues]] #2 must be one of" \
            in sw.log_text()
    finally:
        sw.stop()
