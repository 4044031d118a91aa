"""`pbx cdr` with dialled legs: a short "legs" column in the table, the full legs in --json."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pbxcore.cli.cdr_cmd import legs_text
from pbxcore.cli.main import main
from pbxcore.store import CdrEnd, CdrStart, open_store

FIXTURES = Path(__file__).parents[1] / "config" / "fixtures"
NOW = datetime.now(UTC).replace(microsecond=0)


def pbx(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "250"})


async def _fill(site: Path) -> None:
    store = await open_store("sqlite:///var/pbx.db", base_dir=site)
    try:
        # DIAL: 1002 busy, then 1003 answered and hung up first; PLAIN: no dial at all.
        await store.cdr_open(CdrStart("DIAL", "d@h", NOW - timedelta(minutes=5), "1001", "200"))
        await store.cdr_leg("DIAL", 2, {"target": "1003", "uri": "sip:1003@10.0.0.9",
                                        "disposition": "answered", "sip_code": 200,
                                        "talk_seconds": 42.5, "recordings": ["d-1.wav"]})
        await store.cdr_leg("DIAL", 1, {"target": "1002", "uri": "sip:1002@10.0.0.8",
                                        "disposition": "busy", "sip_code": 486,
                                        "reason": "[red]Busy[/red] Here"})
        await store.cdr_close("DIAL", CdrEnd(NOW - timedelta(minutes=4), "answered", "callee",
                                             "BYE from callee"))
        await store.cdr_open(CdrStart("PLAIN", "p@h", NOW - timedelta(minutes=9), "1004", "100"))
        # RINGING: still in progress, its only leg has no outcome yet and no target name.
        await store.cdr_open(CdrStart("RINGING", "r@h", NOW - timedelta(minutes=1), "1005", "300"))
        await store.cdr_leg("RINGING", 1, {"uri": "sip:[b]x[/b]@10.0.0.7", "disposition": None})
    finally:
        await store.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(FIXTURES, site)
    asyncio.run(_fill(site))
    return site / "pbx.toml"


def test_table_shows_legs_in_leg_order(config: Path) -> None:
    result = pbx("cdr", "--config", config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = [c.strip() for c in next(line for line in lines if "call id" in line).split("┃")]
    assert header[1:-1] == ["start", "call id", "caller", "called", "route", "disposition",
                            "legs", "duration", "billsec", "hangup"]
    rows = {cells[2]: cells for cells in ([c.strip() for c in line.split("│")] for line in lines
                                          if line.startswith("│"))}
    legs = header.index("legs")
    assert {k: v[legs] for k, v in rows.items()} == {
        "DIAL": "1002 busy, 1003 answered",
        "PLAIN": "",
        "RINGING": "sip:[b]x[/b]@10.0.0.7 in progress",  # peer text shown as is, not markup
    }
    assert rows["DIAL"][header.index("hangup")] == "callee BYE from callee"


def test_json_has_every_leg_in_full(config: Path) -> None:
    result = pbx("cdr", "--config", config, "--json")
    assert result.exit_code == 0, result.output
    by_id = {r["call_id"]: r for r in json.loads(result.stdout)}
    assert by_id["DIAL"]["hangup_by"] == "callee"
    assert by_id["DIAL"]["legs"] == [
        {"leg": 1, "target": "1002", "uri": "sip:1002@10.0.0.8", "disposition": "busy",
         "sip_code": 486, "reason": "[red]Busy[/red] Here"},
        {"leg": 2, "target": "1003", "uri": "sip:1003@10.0.0.9", "disposition": "answered",
         "sip_code": 200, "talk_seconds": 42.5, "recordings": ["d-1.wav"]}]
    assert by_id["PLAIN"]["legs"] == []
    assert by_id["RINGING"]["legs"] == [{"leg": 1, "uri": "sip:[b]x[/b]@10.0.0.7",
                                         "disposition": None}]


def test_legs_text_short_form() -> None:
    assert legs_text(()) == ""
    assert legs_text(({"leg": 1, "target": "1002", "disposition": "no answer"},
                      {"leg": 2, "target": "", "uri": "sip:q@h", "disposition": "canceled"},
                      {"leg": 3})) == "1002 no answer, sip:q@h canceled, leg 3 in progress"
