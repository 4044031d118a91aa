"""`pbx cdr`: call records from the config's store, as a table, JSON, CSV or XLSX."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pbxcore.cli.common import config_option, json_text, open_config_store, utc_text
from pbxcore.cli.filters import context, filter_options, filters, period, utcnow
from pbxcore.cli.fit import Column, fitted
from pbxcore.report.load import filtered_cdrs
from pbxcore.report.model import Filters, direction
from pbxcore.store import Cdr


async def _fetch(config_path: Path, since: datetime | None, until: datetime | None,
                 f: Filters, extensions: frozenset[str], limit: int) -> list[Cdr]:
    store = await open_config_store(config_path)
    try:
        return await filtered_cdrs(store, since=since, until=until, filters=f,
                                   extensions=extensions, limit=limit)
    finally:
        await store.close()


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def legs_text(legs: tuple[Mapping[str, Any], ...]) -> str:
    """Dialled legs in short form, in leg order: "1002 busy, 1003 answered"."""
    def one(leg: Mapping[str, Any]) -> str:
        who = leg.get("target") or leg.get("uri") or f"leg {leg.get('leg', '?')}"
        return f"{who} {leg.get('disposition') or 'in progress'}"

    return ", ".join(one(leg) for leg in legs)


# Priority 0 is always shown; at a narrow terminal the highest numbers go first.
COLUMNS = (Column("start", 0), Column("call id", 4), Column("caller", 1, fold=12),
           Column("called", 1, fold=12), Column("route", 7, fold=16),
           Column("disposition", 2), Column("legs", 5, fold=16),
           Column("duration", 3, "right"), Column("billsec", 6, "right"),
           Column("hangup", 7, fold=14))


def render(cdrs: list[Cdr], width: int = 250) -> Table:
    """The CDR table within ``width`` columns: fewer columns when narrow, never squeezed ones
    (caller names and causes come from peers: fit() prints them as text, escaped)."""
    calls = "1 call" if len(cdrs) == 1 else f"{len(cdrs)} calls"
    rows = []
    for c in cdrs:
        caller = f"{c.caller} ({c.caller_name})" if c.caller_name else c.caller
        hangup = " ".join(x for x in (c.hangup_by or "", c.hangup_cause,
                                      str(c.hangup_code or "")) if x)
        rows.append([utc_text(c.start), c.call_id, caller, c.called, c.route or "",
                     c.disposition or "in progress", legs_text(c.legs), _seconds(c.duration),
                     _seconds(c.billsec), hangup])
    table, hidden = fitted(COLUMNS, rows, width, title=f"{calls}, newest first (times UTC)")
    if hidden:
        table.caption = f"not shown at {width} columns: {', '.join(hidden)} (--json shows all)"
        table.caption_justify = "left"
    return table


CSV_FIELDS = ("call_id", "start", "answer", "end", "caller", "caller_name", "called",
              "direction", "route", "disposition", "duration", "billsec", "hangup_by",
              "hangup_cause", "hangup_code", "queues", "agents", "legs")


def flat(c: Cdr, extensions: frozenset[str]) -> dict[str, Any]:
    """One CSV/XLSX row: times as UTC text, lists joined."""
    return {
        "call_id": c.call_id, "start": utc_text(c.start), "answer": utc_text(c.answer),
        "end": utc_text(c.end), "caller": c.caller, "caller_name": c.caller_name,
        "called": c.called, "direction": direction(c.caller, extensions, c.route),
        "route": c.route or "", "disposition": c.disposition or "in progress",
        "duration": c.duration, "billsec": c.billsec, "hangup_by": c.hangup_by or "",
        "hangup_cause": c.hangup_cause, "hangup_code": c.hangup_code,
        "queues": " ".join(q.queue for q in c.queues),
        "agents": " ".join(sorted({q.agent for q in c.queues if q.agent})),
        "legs": legs_text(c.legs)}


@click.command("cdr")
@config_option
@filter_options
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the records to this CSV file.")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the records to this Excel workbook.")
def cdr(config_path: Path, since: str | None, until: str | None, queue: str | None,
        agent: str | None, direction: str | None, number: str | None,
        min_duration: float | None, limit: int, as_json: bool, csv_path: Path | None,
        xlsx_path: Path | None) -> None:
    """Show call records (one per call, its dialled legs nested) from the store named in the
    config, newest first."""
    start, end = period(since, until, utcnow(), default_since=None)
    f = filters(queue, agent, direction, number, min_duration)
    needs_config = f.direction is not None or csv_path is not None or xlsx_path is not None
    extensions = context(config_path).extensions if needs_config else frozenset()
    cdrs = asyncio.run(_fetch(config_path, start, end, f, extensions, limit))
    rows = [flat(c, extensions) for c in cdrs]
    if csv_path is not None:
        from pbxcore.report.export import write_rows_csv

        write_rows_csv(csv_path, CSV_FIELDS, rows)
    if xlsx_path is not None:
        from pbxcore.report.export import write_rows_xlsx  # openpyxl only for --xlsx

        write_rows_xlsx(xlsx_path, "cdr", CSV_FIELDS, rows)
    if as_json:
        click.echo(json_text([c.to_json() for c in cdrs]))
    else:
        console = Console(highlight=False)
        console.print(render(cdrs, console.width))
