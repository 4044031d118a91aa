"""`pbx queues`, `pbx agents`, `pbx agent login|logout|pause|unpause EXT`: the ACD, live.

The switch answers these only when it has queues (the ACD service registers the commands);
otherwise the answer is "no queues configured" (exit 1).  Shapes: docs/operations.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pbxcore.acd.spec import AGENT_STATES
from pbxcore.cli.control import ask, cell, control_options, dumps, duration, lines

# Column-saving labels for agent states in `pbx queues` (the full names are in --json).
SHORT = {"logged_out": "out", "available": "avail", "ringing": "ring", "talking": "talk",
         "wrapup": "wrap", "paused": "pause"}


def _agents(counts: dict[str, int]) -> Text:
    # One state per line: the cell stays narrow at 80 columns.
    return lines(*(f"{counts[s]} {SHORT.get(s, s)}" for s in AGENT_STATES
                   if counts.get(s) and s != "logged_out")) or Text("none in")


def _alert(alert: dict[str, Any] | None) -> str:
    if not alert:
        return ""
    value, threshold = alert["value"], alert["threshold"]
    if alert["figure"] == "longest_wait":
        value, threshold = duration(value), duration(threshold)
    return f"{alert['figure']} {value} >= {threshold}"


def _callbacks(callbacks: list[dict[str, Any]]) -> str:
    """Waiting callbacks in their order: the number and, once tried, the attempts so far."""
    return ", ".join(f"{c['number']}" + (f" (x{c['attempts']})" if c.get("attempts") else "")
                     for c in callbacks)


def render_queues(queues: list[dict[str, Any]]) -> Table:
    table = Table(title="queues", title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True,
                  pad_edge=False)
    table.add_column("queue", overflow="fold")
    table.add_column("wait", justify="right", no_wrap=True)
    table.add_column("longest", justify="right", no_wrap=True)
    table.add_column("agents", overflow="fold")
    table.add_column("ans/abd", justify="right", no_wrap=True)
    table.add_column("SL", justify="right", no_wrap=True)
    # Only while some callback waits, so the usual table keeps its width.
    with_callbacks = any(q.get("callbacks") for q in queues)
    if with_callbacks:
        table.add_column("callbacks", overflow="fold")
    table.add_column("alert", overflow="fold", style="bold red")
    for q in queues:
        sl = q.get("sl_today")
        sl_text = "" if sl is None else f"{sl:.0f}%/{q['service_level']:g}s"
        callbacks = [cell(_callbacks(q.get("callbacks") or []))] if with_callbacks else []
        table.add_row(cell(q["name"]), cell(q["waiting"]), cell(duration(q.get("longest_wait"))),
                      _agents(q.get("agents") or {}),
                      cell(f"{q['answered_today']}/{q['abandoned_today']}"), cell(sl_text),
                      *callbacks, cell(_alert(q.get("alert"))))
    return table


def render_agents(agents: list[dict[str, Any]]) -> Table:
    table = Table(title="agents", title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True,
                  pad_edge=False)
    table.add_column("agent", overflow="fold")
    table.add_column("state", overflow="fold")
    table.add_column("for", justify="right", no_wrap=True)
    table.add_column("calls", justify="right", no_wrap=True)
    table.add_column("queues", overflow="fold")
    for a in agents:
        who = f"{a['extension']} ({a['name']})" if a.get("name") else a["extension"]
        state = f"{a['state']} ({a['reason']})" if a.get("reason") else a["state"]
        table.add_row(cell(who), cell(state), cell(duration(a.get("state_seconds"))),
                      cell(a.get("calls_today", 0)), cell(", ".join(a.get("queues") or [])))
    return table


@click.command("queues")
@control_options
def queues(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Show each queue: callers waiting, longest wait, agents by state, SL today, alerts."""
    result = ask(config_path, socket_path, "queues", as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    Console(highlight=False).print(render_queues(result["queues"]))


@click.command("agents")
@control_options
def agents(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Show each agent: state, reason, since when, calls today, queues."""
    result = ask(config_path, socket_path, "agents", as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    if not result["agents"]:
        click.echo("no agents")
        return
    Console(highlight=False).print(render_agents(result["agents"]))


@click.command("agent")
@click.argument("op", type=click.Choice(["login", "logout", "pause", "unpause"]))
@click.argument("extension")
@click.option("--queue", "queue", default=None, help="Only this queue (default: all the "
              "agent's queues).")
@click.option("--reason", default=None, help="Why (pause): shown in pbx agents and journalled.")
@control_options
def agent(op: str, extension: str, queue: str | None, reason: str | None, config_path: Path,
          socket_path: Path | None, as_json: bool) -> None:
    """Log an agent in or out, pause or unpause them (as the phone's feature codes do)."""
    result = ask(config_path, socket_path, "agent", {
        "op": op, "extension": extension, "queue": queue, "reason": reason}, as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    state = f"{result['state']} ({result['reason']})" if result.get("reason") else result["state"]
    click.echo(f"agent {cell(result['extension']).plain}: {cell(state).plain}")
