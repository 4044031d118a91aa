"""`pbx report` and `pbx cdr` in-process (CliRunner) on the report fixture day in SQLite:
the table at 80 columns, --json, --csv, --xlsx, --chart.  The figures themselves are checked
on every backend in tests/integration/store/test_report_figures.py."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import shutil
import struct
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from pbxcore.cli.main import main
from pbxcore.report.figures import GROUPINGS
from pbxcore.store import CdrEnd, CdrStart, open_store
from tests.integration.store.report_fixture import at, write_fixture

FIXTURES = Path(__file__).parents[1] / "config" / "fixtures"
PERIOD = ("--from", "2026-05-04", "--to", "2026-05-06")
QUEUES = """
[[users]]
extension = "1003"
password = "pw1003"

[[queues]]
name = "support"
members = ["1001", "1002"]
service_level = 20

[[queues]]
name = "sales"
members = ["1001"]
service_level = 30
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(FIXTURES, site)
    path = site / "pbx.toml"
    path.write_text(path.read_text() + QUEUES)

    async def fill() -> None:
        store = await open_store("sqlite:///var/pbx.db", base_dir=site)
        try:
            await write_fixture(store)
        finally:
            await store.close()

    asyncio.run(fill())
    return path


def pbx(*args: str | Path, columns: int = 80) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": str(columns)})


def _header_cells(out: str) -> list[str]:
    """The cells of the first table's header row (the line after the top rule)."""
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    return [c.strip() for c in lines[top + 1].strip("┃").split("┃")]


def _row(out: str, key: str) -> list[str]:
    line = next(line for line in out.splitlines() if re.match(rf"[│┃ ]\s*{key}\s", line))
    return [c.strip() for c in re.split("[│┃]", line.strip("│┃ "))]


def test_report_table_fits_80_columns_with_whole_columns(config: Path) -> None:
    result = pbx("report", "--config", config, *PERIOD)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = _header_cells(result.stdout)
    # The most important figures are there, each header whole (rich would squeeze them).
    assert header[:6] == ["day", "calls", "offered", "answ", "aband", "short"]
    assert {"ASA", "SL", "AHT"} <= set(header)
    names = {"calls", "offered", "answ", "aband", "short", "ASA", "SL", "SL2", "AHT", "aband%",
             "talk", "wrap-up", "hold", "max wait"}
    assert set(header[1:]) <= names  # every header whole: none cut to a character
    day = _row(result.stdout, "2026-05-04")
    got = dict(zip(header, day, strict=True))
    assert (got["offered"], got["answ"], got["aband"], got["ASA"], got["SL"]) == (
        "6", "3", "2", "13.3", "66.7%")
    totals = dict(zip(header, _row(result.stdout, "total"), strict=True))
    assert (totals["calls"], totals["offered"], totals["SL"], totals["AHT"]) == (
        "8", "7", "75.0%", "132.5")
    assert "Not shown at 80 columns:" in result.stdout  # and it says which


def test_report_wide_shows_every_column(config: Path) -> None:
    result = pbx("report", "--config", config, *PERIOD, "--by", "agent", columns=250)
    header = _header_cells(result.stdout)
    assert {"SL2", "talk", "wrap-up", "hold", "logged in", "paused", "occ."} <= set(header)
    row = dict(zip(header, _row(result.stdout, "1001"), strict=True))
    assert (row["logged in"], row["paused"], row["occ."], row["AHT"]) == (
        "4:30:00", "50:00", "2.7%", "180.0")
    assert "pause time by reason" in result.stdout and "training" in result.stdout
    assert "Not shown" not in result.stdout


def test_report_json(config: Path) -> None:
    result = pbx("report", "--config", config, *PERIOD, "--by", "queue", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["key"] for r in doc["rows"]] == ["sales", "support"]
    t = doc["totals"]
    assert (t["offered"], t["answered"], t["abandoned"], t["short_abandoned"]) == (7, 4, 2, 1)
    assert (t["asa"], t["sl"], t["sl2"], t["aht"], t["hold"]) == (13.8, 0.75, 0.5, 132.5, 12.0)
    assert {"agent": "1001", "reason": "lunch", "seconds": 1200.0} in doc["pauses"]
    assert "ServicelevelPerf" in doc["definitions"]["sl"]


def test_report_filters_reach_the_figures(config: Path) -> None:
    doc = json.loads(pbx("report", "--config", config, *PERIOD, "--json", "--direction",
                         "out").stdout)
    assert (doc["totals"]["calls"], doc["totals"]["offered"]) == (1, 0)
    doc = json.loads(pbx("report", "--config", config, *PERIOD, "--json", "--number",
                         "0800200*", "--min-duration", "50").stdout)
    assert (doc["totals"]["calls"], doc["totals"]["answered"]) == (2, 1)  # C5 206 s, C6 70 s
    bad = pbx("report", "--config", config, "--from", "2026-05-06", "--to", "2026-05-04")
    assert bad.exit_code == 2 and "is not after --from" in bad.stderr


def test_report_csv_parses_back(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.csv"
    result = pbx("report", "--config", config, *PERIOD, "--csv", out)
    assert result.exit_code == 0 and f"wrote {out}" in result.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["day"] for r in rows] == ["2026-05-04", "2026-05-05", "total"]
    total = rows[-1]
    assert (total["offered"], total["answered"], total["SL"], total["SL2"],
            total["ASA (s)"], total["talk"]) == ("7", "4", "0.75", "0.5", "13.8", "470.0")


def test_report_xlsx_sheets_totals_formats(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    result = pbx("report", "--config", config, *PERIOD, "--xlsx", out)
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)
    assert wb.sheetnames == [*GROUPINGS, "pauses", "about"]
    ws = wb["queue"]
    header = [c.value for c in ws[1]]
    last = ws[ws.max_row]
    total = {h: c for h, c in zip(header, last, strict=True)}
    assert total["queue"].value == "total" and total["queue"].font.bold
    assert (total["offered"].value, total["offered"].number_format) == (7, "0")
    assert (total["SL"].value, total["SL"].number_format) == (0.75, "0.0%")
    assert total["ASA (s)"].number_format == "0.0" and total["ASA (s)"].value == 13.75
    assert total["talk"].number_format == "[h]:mm:ss"
    assert total["talk"].value == timedelta(seconds=470)  # stored as days, read back as time
    assert [ws.cell(row=r, column=1).value for r in range(2, ws.max_row)] == ["sales", "support"]
    pauses = [[c.value for c in row] for row in wb["pauses"].iter_rows(min_row=2)]
    assert ["1001", "lunch", timedelta(seconds=1200)] in pauses


def test_report_chart_png(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    result = pbx("report", "--config", config, *PERIOD, "--chart", out)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1000, 1000)
    assert len(data) > 20_000  # three drawn charts, not an empty canvas


def test_cdr_fits_80_columns_with_fewer_columns(config: Path) -> None:
    result = pbx("cdr", "--config", config, *PERIOD)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    header = _header_cells(result.stdout)
    assert header[:3] == ["start", "caller", "called"] and "disposition" in header
    assert all(len(cell) >= 5 for cell in header)  # no column squeezed to a character
    assert "not shown at 80 columns" in result.stdout
    wide = pbx("cdr", "--config", config, *PERIOD, columns=250)
    assert _header_cells(wide.stdout) == ["start", "call id", "caller", "called", "route",
                                          "disposition", "legs", "duration", "billsec",
                                          "hangup"]


def test_cdr_filters_csv_xlsx(config: Path, tmp_path: Path) -> None:
    out = pbx("cdr", "--config", config, *PERIOD, "--json", "--direction", "out")
    assert [c["call_id"] for c in json.loads(out.stdout)] == ["C7"]
    out = pbx("cdr", "--config", config, *PERIOD, "--json", "--queue", "sales")
    assert [c["call_id"] for c in json.loads(out.stdout)] == ["C6", "C5"]
    out = pbx("cdr", "--config", config, *PERIOD, "--json", "--agent", "1002", "--limit", "1")
    assert [c["call_id"] for c in json.loads(out.stdout)] == ["C8"]
    path, book = tmp_path / "cdr.csv", tmp_path / "cdr.xlsx"
    result = pbx("cdr", "--config", config, *PERIOD, "--number", "0800100100",
                 "--min-duration", "90", "--csv", path, "--xlsx", book)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [(r["call_id"], r["direction"], r["queues"], r["duration"]) for r in rows] == [
        ("C8", "in", "support", "106.0"), ("C1", "in", "support", "135.0")]
    ws = load_workbook(book)["cdr"]
    header = [c.value for c in ws[1]]
    assert ws.max_row == 3 and ws.cell(row=2, column=1).value == "C8"
    duration = ws.cell(row=2, column=header.index("duration") + 1)
    assert (duration.value, duration.number_format) == (106.0, "0.0")


def test_caller_made_numbers_stay_text(config: Path, tmp_path: Path) -> None:
    """A DID a peer made up reaches the terminal escaped, never as markup or escapes, and a
    spreadsheet as text, never as a formula."""
    evil = "=HYPERLINK(1)\x1b[2J[red]x"

    async def add() -> None:
        store = await open_store("sqlite:///var/pbx.db", base_dir=config.parent)
        try:
            await store.cdr_open(CdrStart("E1", "e@x", at(0, "12:00:00"), "0611", evil))
            await store.cdr_close("E1", CdrEnd(at(0, "12:00:09"), "rejected", "switch"))
        finally:
            await store.close()

    asyncio.run(add())
    out, book = tmp_path / "did.csv", tmp_path / "did.xlsx"
    result = pbx("report", "--config", config, *PERIOD, "--by", "did", "--csv", out,
                 "--xlsx", book, columns=200)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\\x1b[2J[red]x" in result.stdout
    keys = [r["did"] for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))]
    assert "'" + evil in keys
    cell = next(c for c in load_workbook(book)["did"]["A"] if c.value and "HYPER" in c.value)
    assert (cell.value, cell.data_type) == ("'=HYPERLINK(1)\\x1b[2J[red]x", "s")


def test_heavy_writers_load_only_when_asked(config: Path, tmp_path: Path) -> None:
    """openpyxl and matplotlib cost seconds to import: a table or JSON report loads neither."""
    code = ("import sys; from click.testing import CliRunner; from pbxcore.cli.main import main; "
            f"r = CliRunner().invoke(main, ['report', '--config', {str(config)!r}, '--json']); "
            "print(r.exit_code, 'openpyxl' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).parents[3])
    assert out.stdout.split() == ["0", "False", "False"], out.stderr
