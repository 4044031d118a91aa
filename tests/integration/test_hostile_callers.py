"""Hostile caller IDs against a real `pbx run` (issue 9, items 3 and 7): bytes that are not UTF-8
still get a closed CDR (stored escaped), a store that refuses the first write still gets the
record, and newlines, ESC/OSC sequences and rich markup reach neither the log nor `pbx cdr`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.integration.test_call_flow import script
from tests.integration.uac import Uac

ESC_NAME = "\x1b[31mred\x1b[0m \x1b]0;owned\x07 [bold]loud[/bold]"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    dir = tmp_path_factory.mktemp("hostile")
    s = dir / "s"
    s.mkdir()
    script(s, "bye.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo hangup;; esac\n')
    script(s, "moh.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo "play moh loop=20";; '
                        'esac\n')
    port = free_port()
    routes = "".join(f"""
[[routes]]
match = "^{num}$"
script = "{s / name}"
public = {public}
""" for num, name, public in [("600", "bye.sh", "true"), ("601", "bye.sh", "false"),
                               ("602", "moh.sh", "true")])
    sw = start_switch(dir, write_config(dir, port=port, routes=routes, scripts=s), port)
    yield sw
    sw.stop()


def cdr_of(sw: SwitchProcess, sip_call_id: str, timeout: float = 10) -> dict[str, Any]:
    """The closed CDR of the call with this SIP Call-ID (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for cdr in json.loads(sw.pbx("cdr", "--json").stdout):
            if cdr["sip_call_id"] == sip_call_id and cdr["end"]:
                return dict(cdr)
        time.sleep(0.1)
    raise AssertionError(f"no closed CDR for {sip_call_id}:\n{sw.log_text()[-3000:]}")


def call_and_wait_bye(uac: Uac, number: str) -> None:
    try:
        resp = uac.call(number)
        assert resp is not None and resp.status == 200
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()


def test_from_user_bytes_on_a_public_route_are_recorded(site: SwitchProcess) -> None:
    uac = Uac(site.port, user="12%FF%FE34", display="\udcff\udcfe")  # raw bytes ff fe on the wire
    assert b'"\xff\xfe" <sip:12%FF%FE34@' in uac.build_invite("600").to_bytes()
    call_and_wait_bye(uac, "600")
    cdr = cdr_of(site, uac.call_id)
    assert (cdr["caller"], cdr["caller_name"]) == ("12\\xff\\xfe34", "\\xff\\xfe")
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "script"


def test_display_name_bytes_on_an_authenticated_call_are_recorded(site: SwitchProcess) -> None:
    uac = Uac(site.port, user="1001", password="secret1001", display="Bob \udcff\udcfe")
    call_and_wait_bye(uac, "601")
    cdr = cdr_of(site, uac.call_id)
    assert (cdr["caller"], cdr["caller_name"]) == ("1001", "Bob \\xff\\xfe")
    trace = json.loads(site.pbx("trace", cdr["call_id"], "--json").stdout)
    assert [e["kind"] for e in trace].count("script") >= 1  # the trace was written too


def test_a_refused_first_write_still_leaves_a_closed_cdr(site: SwitchProcess) -> None:
    """The database refuses the CDR's first INSERT (a trigger stands in for a full disk or a
    lock): the call goes on, and at hangup the switch writes the whole record."""
    db = sqlite3.connect(site.dir / "var" / "pbx.db", isolation_level=None, timeout=10)
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON cdr "
               "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")
    uac = Uac(site.port)
    try:
        resp = uac.call("602")
        assert resp is not None and resp.status == 200
        deadline = time.monotonic() + 10
        while "disk full (test)" not in site.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "disk full (test)" in site.log_text()
        db.execute("DROP TRIGGER refuse")
        bye = uac.bye()
        assert bye is not None and bye.status == 200
    finally:
        db.execute("DROP TRIGGER IF EXISTS refuse")
        db.close()
        uac.close()
    cdr = cdr_of(site, uac.call_id)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "caller"
    assert cdr["answer"] is not None and cdr["billsec"] > 0
    assert "CDR written at hangup" in site.log_text()
    assert "UnknownCallError" not in site.log_text()  # no later write failed one by one


def pbx_cdr_table(sw: SwitchProcess) -> str:
    env = {**os.environ, "COLUMNS": "400", "TERM": "xterm-256color"}
    out = subprocess.run([sys.executable, "-m", "pbxcore", "cdr", "--config", str(sw.config)],
                         capture_output=True, text=True, timeout=30, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_newlines_escapes_and_markup_reach_neither_log_nor_table(site: SwitchProcess) -> None:
    uac = Uac(site.port, user="1234%0Adial%20900", display=ESC_NAME)
    call_and_wait_bye(uac, "600")
    cdr = cdr_of(site, uac.call_id)
    assert cdr["caller"] == "1234\ndial 900" and cdr["caller_name"] == ESC_NAME  # stored as sent
    log = site.log_text()
    assert "\x1b" not in log and "\x07" not in log
    assert not [line for line in log.splitlines() if line.startswith("dial 900")]
    assert "1234\\ndial 900" in log and "\\x1b[31mred" in log  # escaped, still readable
    table = pbx_cdr_table(site)
    assert "\x1b" not in table and "\x07" not in table
    assert "1234\\ndial 900" in table and "[bold]loud[/bold]" in table  # markup printed as text
