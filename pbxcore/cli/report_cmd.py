"""`pbx report`: queue and call figures for a period, from the CDRs, the queue journal and the
agent events (pbxcore.report), as a table, JSON, CSV, XLSX or a PNG of charts."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from pbxcore.cli.common import config_option, open_config_store, utc_text
from pbxcore.cli.filters import context, filter_options, filters, period, utcnow
from pbxcore.cli.fit import Column, fitted
from pbxcore.report.agents import AgentTime
from pbxcore.report.export import DEFINITIONS
from pbxcore.report.figures import (
    DEFAULT_SHORT_ABANDON,
    GROUPINGS,
    SL_DEFINITIONS,
    Report,
    report,
)
from pbxcore.report.load import Context, TooManyRows, load
from pbxcore.report.model import Dataset, Filters, Period


def duration(seconds: float | None) -> str:
    """h:mm:ss, or m:ss under an hour; "" for None."""
    if seconds is None:
        return ""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def _secs(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}"


def _columns(by: str, sl: str) -> list[tuple[Column, Any]]:
    agent = by == "agent"
    first, second = (2, 5) if sl == "perf" else (5, 2)
    cols: list[tuple[Column, Any]] = [
        (Column(by, 0, fold=14), lambda f: f.key),
        (Column("calls", 3, "right"), lambda f: str(f.calls)),
        (Column("offered", 1, "right"), lambda f: str(f.offered)),
        (Column("answ", 1, "right"), lambda f: str(f.answered)),
        (Column("aband", 1, "right"), lambda f: str(f.abandoned)),
        (Column("short", 4, "right"), lambda f: str(f.short_abandoned)),
        (Column("ASA", 2, "right"), lambda f: _secs(f.asa)),
        (Column("SL", first, "right"), lambda f: _pct(f.sl)),
        (Column("SL2", second, "right"), lambda f: _pct(f.sl2)),
        (Column("AHT", 3, "right"), lambda f: _secs(f.aht)),
        (Column("aband%", 4, "right"), lambda f: _pct(f.abandon_rate)),
        (Column("talk", 6, "right"), lambda f: duration(f.talk)),
        (Column("wrap-up", 6, "right"), lambda f: duration(f.wrapup)),
        (Column("hold", 7, "right"), lambda f: duration(f.hold)),
        (Column("max wait", 7, "right"), lambda f: _secs(f.max_wait)),
    ]
    if agent:
        cols += [(Column("logged in", 3, "right"), lambda f: duration(f.logged_in)),
                 (Column("paused", 4, "right"), lambda f: duration(f.paused)),
                 (Column("occ.", 2, "right"), lambda f: _pct(f.occupancy))]
    return cols


def render(rep: Report, agents: dict[str, AgentTime], p: Period, *, sl: str,
           width: int) -> list[Any]:
    """The tables `pbx report` prints, fitted to ``width`` columns."""
    cols = _columns(rep.by, sl)
    rows = [[get(f) for _, get in cols] for f in rep.rows]
    title = f"{utc_text(p.since)} to {utc_text(p.until)} UTC, by {rep.by}"
    table, hidden = fitted([c for c, _ in cols], rows, width, title=title,
                           footer=[get(rep.totals) for _, get in cols])
    out: list[Any] = [table]
    pauses = [[name, reason or "(none)", duration(s)] for name, t in sorted(agents.items())
              for reason, s in sorted(t.pauses.items())]
    if rep.by == "agent" and pauses:
        ptable, _ = fitted([Column("agent", 0, fold=12), Column("pause reason", 0, fold=20),
                            Column("time", 0, "right")], pauses, width,
                           title="pause time by reason")
        out.append(ptable)
    notes = ["SL: answered within the queue's service_level / answered (ServicelevelPerf); "
             "SL2: / (answered + abandoned) (ServicelevelPerf2). ASA, AHT in seconds."]
    if hidden:
        notes.append(f"Not shown at {width} columns: {', '.join(hidden)} "
                     "(--json, --csv or a wider terminal show them).")
    out += notes
    return out


def to_json(rep: Report, agents: dict[str, AgentTime], p: Period, *, sl: str,
            short_abandon: float, f: Filters) -> dict[str, Any]:
    return {
        "from": p.since.isoformat(), "to": p.until.isoformat(), "by": rep.by,
        "sl_definition": sl, "short_abandon": short_abandon,
        "filters": {k: v for k, v in vars(f).items() if v is not None},
        "rows": [r.to_json() for r in rep.rows], "totals": rep.totals.to_json(),
        "pauses": [{"agent": name, "reason": reason, "seconds": round(s, 1)}
                   for name, t in sorted(agents.items()) for reason, s in sorted(t.pauses.items())],
        "definitions": DEFINITIONS,
    }


async def _fetch(config_path: Path, p: Period, f: Filters, ctx: Context,
                 now: datetime) -> tuple[Dataset, dict[str, AgentTime]]:
    store = await open_config_store(config_path)
    try:
        return await load(store, p, f, ctx, now=now)
    except TooManyRows as e:
        raise click.ClickException(str(e)) from None
    finally:
        await store.close()


def all_reports(data: Dataset, agents: dict[str, AgentTime],
                short_abandon: float) -> list[Report]:
    return [report(data, by, agents, short_abandon=short_abandon) for by in GROUPINGS]


@click.command("report")
@config_option
@filter_options
@click.option("--by", type=click.Choice(GROUPINGS), default="day", show_default=True,
              help="One row per hour, day, ISO week (UTC), agent, queue, DID or route.")
@click.option("--sl", type=click.Choice(SL_DEFINITIONS), default="perf", show_default=True,
              help="The service level the narrow table and the chart show: perf = within "
                   "threshold / answered, perf2 = / (answered + abandoned). Exports have both.")
@click.option("--short-abandon", type=click.FloatRange(min=0), default=DEFAULT_SHORT_ABANDON,
              show_default=True, metavar="S", help="An abandon after at most S seconds of "
              "waiting is a short abandon.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the grouping's rows and totals to this CSV file.")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an Excel workbook: one sheet per grouping, with totals.")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG: load by hour, service level per day, abandon rate per day.")
def report_command(config_path: Path, since: str | None, until: str | None, queue: str | None,
                   agent: str | None, direction: str | None, number: str | None,
                   min_duration: float | None, by: str, sl: str, short_abandon: float,
                   as_json: bool, csv_path: Path | None, xlsx_path: Path | None,
                   chart_path: Path | None) -> None:
    """Queue and call figures for a period (default: today, UTC): offered, answered,
    abandoned, ASA, service level, AHT, occupancy, pause time, calls per DID. Computed from
    the store's CDRs, queue journal and agent events; definitions in docs/operations.md."""
    now = utcnow()
    start, end = period(since, until, now, default_since="today")
    assert start is not None
    p = Period(start, end or now)
    f = filters(queue, agent, direction, number, min_duration)
    data, agents = asyncio.run(_fetch(config_path, p, f, context(config_path), now))
    rep = report(data, by, agents, short_abandon=short_abandon)
    written = []
    if csv_path is not None:
        from pbxcore.report.export import write_csv

        write_csv(csv_path, rep, agents)
        written.append(csv_path)
    if xlsx_path is not None:
        from pbxcore.report.export import write_xlsx  # openpyxl: loaded only for --xlsx

        write_xlsx(xlsx_path, all_reports(data, agents, short_abandon), agents, p)
        written.append(xlsx_path)
    if chart_path is not None:
        from pbxcore.cli.report_chart import write_chart  # matplotlib: only for --chart

        write_chart(chart_path, data, p, sl=sl, short_abandon=short_abandon)
        written.append(chart_path)
    if as_json:
        click.echo(json.dumps(to_json(rep, agents, p, sl=sl, short_abandon=short_abandon, f=f),
                              indent=2, ensure_ascii=False))
        for path in written:
            click.echo(f"wrote {path}", err=True)
        return
    console = Console(highlight=False)
    for part in render(rep, agents, p, sl=sl, width=console.width):
        console.print(part)
    for path in written:
        click.echo(f"wrote {path}")
