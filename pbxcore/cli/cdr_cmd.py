"""`pbx cdr`: recent call records from the config's store, as a table or JSON."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pbxcore.cli.common import (
    cell,
    config_option,
    json_text,
    open_config_store,
    parse_since,
    utc_text,
)
from pbxcore.store import Cdr


async def _fetch(config_path: Path, since: datetime | None, limit: int) -> list[Cdr]:
    store = await open_config_store(config_path)
    try:
        return await store.cdrs(since=since, limit=limit)
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


def render(cdrs: list[Cdr]) -> Table:
    calls = "1 call" if len(cdrs) == 1 else f"{len(cdrs)} calls"
    table = Table(title=f"{calls}, newest first (times UTC)", title_justify="left")
    for name, justify in (("start", "left"), ("call id", "left"), ("caller", "left"),
                          ("called", "left"), ("route", "left"), ("disposition", "left"),
                          ("legs", "left"), ("duration", "right"), ("billsec", "right"),
                          ("hangup", "left")):
        table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=name in ("start", "call id"))
    for c in cdrs:
        caller = f"{c.caller} ({c.caller_name})" if c.caller_name else c.caller
        hangup = " ".join(x for x in (c.hangup_by or "", c.hangup_cause,
                                      str(c.hangup_code or "")) if x)
        # Caller names and causes come from peers: escaped, and never read as markup.
        table.add_row(*(cell(x) for x in (
            utc_text(c.start), c.call_id, caller, c.called, c.route or "",
            c.disposition or "in progress", legs_text(c.legs), _seconds(c.duration),
            _seconds(c.billsec), hangup)))
    return table


@click.command("cdr")
@config_option
@click.option("--since", help="Only calls that started after this: an age (15m, 1h, 2d, 1w), "
              "today, yesterday (from 00:00 UTC) or an ISO time (no zone means UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def cdr(config_path: Path, since: str | None, limit: int, as_json: bool) -> None:
    """Show call records (one per call, its dialled legs nested) from the store named in the
    config."""
    start = parse_since(since, datetime.now(UTC)) if since else None
    cdrs = asyncio.run(_fetch(config_path, start, limit))
    if as_json:
        click.echo(json_text([c.to_json() for c in cdrs]))
    else:
        Console(highlight=False).print(render(cdrs))
