"""`pbx journal` in-process against a real SQLite store file: filters, --since forms, JSON, and
caller-made text shown as text (no rich markup, no terminal control)."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pbxcore.cli.common import parse_since
from pbxcore.cli.main import main
from pbxcore.store import CdrStart, JournalEntry, open_store

FIXTURES = Path(__file__).parents[1] / "config" / "fixtures"
NOW = datetime.now(UTC).replace(microsecond=0)


def pbx(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "250"})


async def _fill(site: Path) -> None:
    store = await open_store("sqlite:///var/pbx.db", base_dir=site)
    try:
        old = NOW - timedelta(days=3)
        await store.journal_append([
            JournalEntry(old, "support", "ENTERQUEUE", "OLD", data=("", "1009", "1")),
            JournalEntry(NOW - timedelta(minutes=50), "support", "ENTERQUEUE", "C1",
                         data=("", "1001", "1")),
            JournalEntry(NOW - timedelta(minutes=49), "support", "CONNECT", "C1", "1002",
                         ("60", "C1", "4"), node="node-a"),
            JournalEntry(NOW - timedelta(minutes=20), "sales", "EXITWITHKEY", "C2",
                         data=("[red]0[/red]\x1b[2J", "3", "12")),
            JournalEntry(NOW - timedelta(minutes=10), "NONE", "PAUSE", agent="1002",
                         data=("lunch",)),
        ])
    finally:
        await store.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    # "Now" is when the test runs, not when the module was collected: a whole-suite run reaches
    # this file minutes after collection, and --since 1h / 30m are relative to the clock.
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)
    site = tmp_path / "site"
    shutil.copytree(FIXTURES, site)
    asyncio.run(_fill(site))
    return site / "pbx.toml"


def test_table_is_oldest_first_with_the_queue_log_columns(config: Path) -> None:
    result = pbx("journal", "--config", config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].rstrip() == "5 entries, oldest first (times UTC)"
    header = [c.strip() for c in next(x for x in lines if "call id" in x).split("┃")]
    assert header[1:-1] == ["time", "queue", "call id", "agent", "event", "data", "node"]
    events = [e for x in lines for e in ("ENTERQUEUE", "CONNECT", "EXITWITHKEY", "PAUSE")
              if f" {e} " in x]
    assert events == ["ENTERQUEUE", "ENTERQUEUE", "CONNECT", "EXITWITHKEY", "PAUSE"]
    connect = next(x for x in lines if "CONNECT" in x)
    assert "60|C1|4" in connect and "node-a" in connect and "1002" in connect


def test_caller_made_text_is_not_markup_or_terminal_control(config: Path) -> None:
    result = pbx("journal", "--config", config, "--queue", "sales")
    assert result.exit_code == 0, result.output
    assert "[red]0[/red]" in result.stdout  # shown literally, not as red
    assert "\x1b" not in result.stdout  # ESC never reaches the terminal
    assert "\\x1b[2J|3|12" in result.stdout  # it is shown as an escape instead


def test_cdr_table_shows_an_escape_in_a_display_name_as_text(config: Path) -> None:
    async def fill() -> None:
        store = await open_store("sqlite:///var/pbx.db", base_dir=config.parent)
        try:
            await store.cdr_open(CdrStart("ESC", "e@h", NOW, "1001", "100",
                                          caller_name="Bob\x1b]0;pwned\x07"))
        finally:
            await store.close()

    asyncio.run(fill())
    result = pbx("cdr", "--config", config)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "Bob\\x1b]0;pwned\\x07" in result.stdout


def test_filters_and_limit(config: Path) -> None:
    def events(*args: str) -> list[tuple[str, str]]:
        result = pbx("journal", "--config", config, "--json", *args)
        assert result.exit_code == 0, result.output
        return [(e["callid"], e["event"]) for e in json.loads(result.stdout)]

    assert events("--queue", "support") == [("OLD", "ENTERQUEUE"), ("C1", "ENTERQUEUE"),
                                            ("C1", "CONNECT")]
    assert events("--since", "1h", "--queue", "support") == [("C1", "ENTERQUEUE"),
                                                             ("C1", "CONNECT")]
    assert events("--since", "30m") == [("C2", "EXITWITHKEY"), ("NONE", "PAUSE")]
    assert events("--limit", "2") == [("C2", "EXITWITHKEY"), ("NONE", "PAUSE")]  # newest 2
    assert events("--call", "C1") == [("C1", "ENTERQUEUE"), ("C1", "CONNECT")]
    since = (NOW - timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S")
    assert events("--since", since) == [("NONE", "PAUSE")]  # ISO without zone: UTC
    assert ("OLD", "ENTERQUEUE") not in events("--since", "yesterday")


def test_json_rows_have_every_column(config: Path) -> None:
    result = pbx("journal", "--config", config, "--json", "--queue", "NONE")
    assert json.loads(result.stdout) == [{
        "time": (NOW - timedelta(minutes=10)).isoformat(timespec="microseconds"),
        "callid": "NONE", "queuename": "NONE", "agent": "1002", "event": "PAUSE",
        "data1": "lunch", "data2": "", "data3": "", "data4": "", "data5": "", "node": None,
        "extra": {}}]


def test_bad_since_and_missing_store(config: Path, tmp_path: Path) -> None:
    bad = pbx("journal", "--config", config, "--since", "last tuesday")
    assert bad.exit_code == 2 and "today, yesterday" in bad.stderr
    (config.parent / "var" / "pbx.db").unlink()
    gone = pbx("journal", "--config", config)
    assert gone.exit_code == 1 and "no call database at" in gone.stderr


def test_today_and_yesterday_start_at_utc_midnight() -> None:
    now = datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
    assert parse_since("today", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since(" Yesterday ", now) == datetime(2024, 4, 30, tzinfo=UTC)
    assert parse_since("30m", now) == datetime(2024, 5, 1, tzinfo=UTC)
