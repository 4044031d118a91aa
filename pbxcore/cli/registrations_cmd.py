"""`pbx registrations`: the phones registered with the running switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from pbxcore.cli.control import ask, cell, control_options, dumps, duration, lines


def render_registrations(rows: list[dict[str, Any]]) -> Table:
    count = "1 registration" if len(rows) == 1 else f"{len(rows)} registrations"
    table = Table(title=count, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True,
                  pad_edge=False)
    table.add_column("ext", overflow="fold")
    table.add_column("contact", overflow="fold")
    table.add_column("via", no_wrap=True)
    table.add_column("expires", justify="right", no_wrap=True)
    table.add_column("user agent", overflow="fold")
    for r in rows:
        ext = f"{r['extension']} ({r['name']})" if r.get("name") else r["extension"]
        table.add_row(cell(ext), cell(r["contact"]), lines(r["transport"], r["source"]),
                      cell(duration(r["expires"])), cell(r.get("user_agent") or ""))
    return table


@click.command("registrations")
@control_options
def registrations(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Show the registered phones: extension, contact, transport, expiry, user agent."""
    result = ask(config_path, socket_path, "registrations", as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    if not result["registrations"]:
        click.echo("no phones registered")
        return
    Console(highlight=False).print(render_registrations(result["registrations"]))
