"""The report and CDR writers: CSV (stdlib csv) and XLSX (openpyxl, imported only here,
lazily), shared by `pbx report`/`pbx cdr` and the web reports page (pbxcore.web).

The columns are figures.EXPORT_FIELDS in both: raw numbers in the CSV (seconds, ratios as
fractions), Excel number formats in the workbook (counts 0, percentages 0.0%, mean seconds
0.0, totals of time [h]:mm:ss), so a supervisor can compute on them.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbxcore.report.agents import AgentTime
from pbxcore.report.figures import EXPORT_FIELDS, Figures, Report
from pbxcore.report.model import Period

DEFINITIONS = {
    "offered": "every queue visit, also those refused at the door (full, empty)",
    "short_abandoned": "abandoned after waiting at most --short-abandon seconds",
    "asa": "mean wait of answered visits (seconds)",
    "sl": "answered within the queue's service_level / answered (Asterisk ServicelevelPerf)",
    "sl2": "answered within the queue's service_level / (answered + abandoned) "
           "(Asterisk ServicelevelPerf2)",
    "aht": "(talk + wrap-up) / answered (seconds); talk includes time on hold",
    "hold": "seconds on hold within talk, from the answered CDR legs' hold_seconds; null "
            "for calls recorded before legs had it",
    "occupancy": "(time talking + in wrap-up) / (logged in - paused), from agent events",
    "direction": "out: the caller is one of the switch's [[users]]; in: any other caller",
    "did": "the called number of inbound calls",
}
"""The definitions every export carries (JSON, the XLSX about sheet, the web reports page)."""


def utc_text(when: datetime | None) -> str:
    return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


FORMATS = {"count": "0", "ratio": "0.0%", "seconds": "0.0", "duration": "[h]:mm:ss"}


def _cells(f: Figures) -> list[Any]:
    return [get(f) for _, _, get in EXPORT_FIELDS]


def _csv_value(kind: str, value: Any) -> Any:
    if value is None:
        return ""
    if kind == "ratio":
        return round(value, 4)
    if kind in ("seconds", "duration"):
        return round(value, 1)
    return value


def _safe(text: str) -> str:
    """A key a caller made (a number) could start with = + - @: a spreadsheet would run it
    as a formula (CSV injection); a leading apostrophe keeps it text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _xlsx(value: Any) -> Any:
    """A cell value for openpyxl: text kept from formulas (_safe) and with the control
    characters XML cannot hold shown as escapes (openpyxl refuses them: a caller's ESC would
    fail the whole export)."""
    if not isinstance(value, str):
        return value
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return _safe(ILLEGAL_CHARACTERS_RE.sub(
        lambda m: m.group().encode("unicode_escape").decode(), value))


def write_csv(path: Path, rep: Report, agents: dict[str, AgentTime]) -> None:
    """The grouping's rows, then a totals row keyed "total"."""
    with path.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow([rep.by, *(name for name, _, _ in EXPORT_FIELDS)])
        for f in [*rep.rows, rep.totals]:
            w.writerow([_safe(f.key), *(_csv_value(kind, v) for (_, kind, _), v
                                        in zip(EXPORT_FIELDS, _cells(f), strict=True))])


def write_xlsx(path: Path, reports: list[Report], agents: dict[str, AgentTime],
               p: Period) -> None:
    """One sheet per grouping (rows, then a bold totals row), a pauses sheet and an about
    sheet with the period and the definitions."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    wb = Workbook()
    assert wb.active is not None
    wb.remove(wb.active)
    for rep in reports:
        ws = wb.create_sheet(rep.by)
        ws.append([rep.by, *(name for name, _, _ in EXPORT_FIELDS)])
        for cell in ws[1]:
            cell.font = bold
        for f in [*rep.rows, rep.totals]:
            values: list[Any] = [_xlsx(f.key)]
            for (_, kind, _), v in zip(EXPORT_FIELDS, _cells(f), strict=True):
                # Excel keeps time as a fraction of a day: h:mm:ss formats need that.
                values.append(v / 86400 if kind == "duration" and v is not None else v)
            ws.append(values)
            row = ws.max_row
            for col, (_, kind, _) in enumerate(EXPORT_FIELDS, start=2):
                ws.cell(row=row, column=col).number_format = FORMATS[kind]
        for cell in ws[ws.max_row]:
            cell.font = bold
        ws.freeze_panes = "B2"
        ws.column_dimensions["A"].width = 18
        for col in range(2, len(EXPORT_FIELDS) + 2):
            ws.column_dimensions[get_column_letter(col)].width = 12
    ws = wb.create_sheet("pauses")
    ws.append(["agent", "reason", "time"])
    for cell in ws[1]:
        cell.font = bold
    for name, t in sorted(agents.items()):
        for reason, s in sorted(t.pauses.items()):
            ws.append([_xlsx(name), _xlsx(reason), s / 86400])
            ws.cell(row=ws.max_row, column=3).number_format = FORMATS["duration"]
    ws = wb.create_sheet("about")
    ws.append(["from (UTC)", utc_text(p.since)])
    ws.append(["to (UTC)", utc_text(p.until)])
    for name, text in DEFINITIONS.items():
        ws.append([name, text])
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 90
    wb.save(path)


def write_rows_csv(path: Path, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """`pbx cdr --csv`: one row per record, text cells kept from running as formulas."""
    with path.open("w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(fields)
        for r in rows:
            w.writerow([_safe(v) if isinstance(v, str) else ("" if v is None else v)
                        for v in (r[k] for k in fields)])


SECONDS_FIELDS = frozenset({"duration", "billsec"})


def write_rows_xlsx(path: Path, sheet: str, fields: tuple[str, ...],
                    rows: list[dict[str, Any]]) -> None:
    """`pbx cdr --xlsx`: one sheet, a bold header, seconds as numbers (0.0)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    ws.append(list(fields))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append([_xlsx(r[k]) for k in fields])
        for col, name in enumerate(fields, start=1):
            if name in SECONDS_FIELDS:
                ws.cell(row=ws.max_row, column=col).number_format = "0.0"
    ws.freeze_panes = "A2"
    wb.save(path)
