"""Shared pieces of the peer tests: test scripts, a switch for one module, CDR and trace lookups.

Everything goes through the real `pbx run` subprocess (tests/integration/switch_harness.py) and the
real `pbx cdr --json` / `pbx trace CALL --json` commands, so these tests see what an operator sees.
"""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)

PASSWORD_1001 = "secret1001"  # write_config's default users: 1001/secret1001, 1002/secret1002


def write_script(path: Path, body: str, interpreter: str = sys.executable) -> Path:
    """An executable script with an absolute interpreter (the switch execs it without a shell)."""
    path.write_text(f"#!{interpreter}\n" + textwrap.dedent(body).lstrip("\n"))
    path.chmod(0o755)
    return path


def route(match: str, script: Path, *, timeout: float = 5, public: bool = False,
          fallback: tuple[str, ...] = ("play sorry", "hangup")) -> str:
    """One [[routes]] table of pbx.toml."""
    lines = ", ".join(json.dumps(x) for x in fallback)
    return textwrap.dedent(f"""\
        [[routes]]
        match = {json.dumps(match)}
        script = {json.dumps(str(script))}
        language = "en"
        timeout = {timeout}
        public = {"true" if public else "false"}
        fallback = [{lines}]
        """)


def demo_ivr_route(match: str = "^100$") -> str:
    return route(match, REPO / "scripts" / "ivr.py")


@contextlib.contextmanager
def running_switch(dir: Path, routes: str) -> Iterator[SwitchProcess]:
    """`pbx run` with these routes on free loopback ports; stopped (by pid) on exit.  If the
    test failed, the switch log is printed so pytest shows it with the failure."""
    dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(dir, port=port, routes=routes)
    sw = start_switch(dir, config, port)
    try:
        yield sw
    finally:
        sw.stop()
        print(f"--- pbx run log ({sw.log})\n{sw.log_text()[-8000:]}")


def poll(fetch: Callable[[], Any], *, timeout: float, every: float = 0.2) -> Any:
    """Call fetch() until it returns something truthy or the time is up; return the last value."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = fetch()
    return value


def cdrs(sw: SwitchProcess) -> list[dict[str, Any]]:
    out = sw.pbx("cdr", "--json", "--limit", "200")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def cdr_for(sw: SwitchProcess, sip_call_id: str) -> dict[str, Any] | None:
    return next((c for c in cdrs(sw) if c["sip_call_id"] == sip_call_id), None)


def closed_cdr(sw: SwitchProcess, sip_call_id: str, timeout: float = 15) -> dict[str, Any]:
    """The CDR of the call SIPp or pyVoIP made, once the switch has closed it."""

    def fetch() -> dict[str, Any] | None:
        c = cdr_for(sw, sip_call_id)
        return c if c is not None and c["end"] is not None else None

    found = poll(fetch, timeout=timeout, every=0.3)
    assert found, f"no closed CDR for {sip_call_id} within {timeout}s: {cdrs(sw)}"
    return dict(found)


def trace(sw: SwitchProcess, call_id: str) -> list[dict[str, Any]]:
    out = sw.pbx("trace", call_id, "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def script_runs(entries: list[dict[str, Any]], event: str | None = None) -> list[dict[str, Any]]:
    """The data of every script run in a trace (optionally only for one event)."""
    return [e["data"] for e in entries
            if e["kind"] == "script" and (event is None or e["data"].get("event") == event)]


def actions(entries: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["action"] for e in entries if e["kind"] == "action"]


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def summary(entries: list[dict[str, Any]]) -> str:
    """One line per trace entry (time, kind, the interesting part), for assertion messages."""
    lines = []
    for e in entries:
        d = e["data"]
        what = d.get("action") or d.get("event") or d.get("error") or d.get("fallback") or ""
        if e["kind"] == "script":
            env = d.get("env", {})
            what = (f"{d.get('event')} result={env.get('PBX_RESULT', '')!r} "
                    f"digits={env.get('PBX_DIGITS', '')!r} exit={d.get('exit')} "
                    f"error={d.get('error')!r} stdout={d.get('stdout', '')!r}")
        lines.append(f"{e['time'][11:23]} {e['kind']:<6} {what}")
    return "\n".join(lines)
