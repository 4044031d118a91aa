"""`pbx calls` and `pbx hangup CALL_ID`: the live calls of the running switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from pbxcore.cli.control import ask, cell, control_options, dumps, duration, lines


def render_calls(calls: list[dict[str, Any]]) -> Table:
    count = "1 live call" if len(calls) == 1 else f"{len(calls)} live calls"
    table = Table(title=count, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True,
                  pad_edge=False)
    table.add_column("call id", no_wrap=True)
    table.add_column("caller", overflow="fold", min_width=12)  # a whole E.164 number
    table.add_column("called", overflow="fold", min_width=6)
    table.add_column("state", overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("handler", overflow="fold", min_width=7)
    for c in calls:
        state = c["state"]
        if c.get("detail") and state not in ("ringing", "in script"):
            state = f"{state}: {c['detail']}" if state != "bridged" else f"bridged to {c['detail']}"
        handler = c.get("agent") or c.get("script") or ""
        table.add_row(cell(c["call_id"]), lines(c["caller"], c.get("caller_name")),
                      cell(c["called"]), cell(state),
                      cell(duration(c.get("duration"))), cell(handler))
    return table


@click.command("calls")
@control_options
def calls(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Show every live call: who, where, what it is doing now, for how long."""
    result = ask(config_path, socket_path, "calls", as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    if not result["calls"]:
        click.echo("no live calls")
        return
    Console(highlight=False).print(render_calls(result["calls"]))


@click.command("hangup")
@click.argument("call_id")
@control_options
def hangup(call_id: str, config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Hang up a live call as the switch (BYE, or 487 before answer; CDR hangup_by switch)."""
    result = ask(config_path, socket_path, "hangup", {"call_id": call_id}, as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(f"hung up {cell(result['call_id']).plain} ({result['sent']} sent)")
