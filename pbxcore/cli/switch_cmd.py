"""`pbx status` and `pbx reload`: the running switch as a whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from pbxcore.cli.control import ask, cell, control_options, dumps, duration


def _queues_line(queues: list[dict[str, Any]] | None) -> str:
    if not queues:
        return "none"
    return ", ".join(f"{q['name']}: {q['waiting']} waiting"
                     + (f" (longest {duration(q.get('longest_wait'))})" if q.get("waiting") else "")
                     + (" ALERT" if q.get("alert") else "") for q in queues)


def render_status(s: dict[str, Any]) -> Group:
    head = cell(f"pbxcore {s['version']}, pid {s['pid']}, up {duration(s['uptime_seconds'])} "
                f"(since {s['started']})", "bold")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    calls = s["calls"]
    store = s["store"]
    trunks = s.get("trunks") or []
    rows: list[tuple[str, Text]] = [
        ("config", cell(s["config"])),
        ("listen", cell(", ".join(s["listen"]))),
        ("control", cell(s["control"])),
        ("calls", cell(f"{calls['total']} live ({calls['answered']} answered, "
                       f"{calls['bridged']} bridged)")),
        ("phones", cell(f"{s['registrations']} registered")),
        ("queues", cell(_queues_line(s.get("queues")))),
        ("store", cell(store["dsn"] + (" ok" if store["ok"] else f" FAILING: {store['error']}"),
                       "" if store["ok"] else "bold red")),
        ("trunks", cell("; ".join(f"{t['name']}: {t['status']}" for t in trunks) or "none")),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return Group(head, table)


@click.command("status")
@control_options
def status(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Show the running switch: uptime, version, calls, queues, store, trunks."""
    result = ask(config_path, socket_path, "status", as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    Console(highlight=False).print(render_status(result))


@click.command("reload")
@control_options
def reload(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Re-read pbx.toml now: print what changed, or the FILE:LINE problems (exit 1) while
    the running config stays."""
    result = ask(config_path, socket_path, "reload", as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    changes: list[str] = result.get("changes") or []
    out = Console(highlight=False)
    out.print(cell(f"config reloaded ({result['config']}): "
                   + (f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
                      if changes else "no changes")))
    for line in changes:
        out.print(cell(f"  {line}"))
    for what in result.get("restart_needed") or []:
        out.print(cell(f"  {what} changed: takes effect after a restart", "yellow"))


