"""`pbx conferences`, `pbx conference kick|mute|unmute ROOM MEMBER`: conference rooms, live.

MEMBER is the member's number in `pbx conferences`, its call id, or its caller number.
Shapes: docs/operations.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from pbxcore.cli.control import ask, cell, control_options, dumps, duration


def render_conferences(rooms: list[dict[str, Any]]) -> Table:
    table = Table(title="conferences", title_justify="left", box=box.SIMPLE_HEAD,
                  collapse_padding=True, pad_edge=False)
    table.add_column("room", overflow="fold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("caller", overflow="fold")
    table.add_column("flags", overflow="fold")
    table.add_column("for", justify="right", no_wrap=True)
    table.add_column("call", no_wrap=True)  # whole: it is what pbx spy and kick take
    for room in rooms:
        for i, m in enumerate(room["members"]):
            flags = [f for f, on in (("moderator", m.get("moderator")), ("muted", m.get("muted")))
                     if on]
            if m.get("role", "party") != "party":
                flags.append(m["role"])
            table.add_row(cell(room["room"] if i == 0 else ""), cell(m["member"]),
                          cell(m.get("caller") or ""), cell(", ".join(flags)),
                          cell(duration(m.get("seconds"))), cell(m.get("call_id") or ""))
    return table


@click.command("conferences")
@control_options
def conferences(config_path: Path, socket_path: Path | None, as_json: bool) -> None:
    """Show each conference room and its members."""
    result = ask(config_path, socket_path, "conferences", as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    if not result["conferences"]:
        click.echo("no conferences")
        return
    Console(highlight=False).print(render_conferences(result["conferences"]))


@click.command("conference")
@click.argument("op", type=click.Choice(["kick", "mute", "unmute"]))
@click.argument("room")
@click.argument("member")
@control_options
def conference(op: str, room: str, member: str, config_path: Path, socket_path: Path | None,
               as_json: bool) -> None:
    """Kick, mute or unmute a conference member (number, call id or caller number)."""
    result = ask(config_path, socket_path, "conference",
                 {"op": op, "room": room, "member": member}, as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    done = {"kick": "kicked", "mute": "muted", "unmute": "unmuted"}[op]
    click.echo(f"conference {cell(result['room']).plain}: member {cell(result['member']).plain}"
               f" ({cell(result.get('caller') or '').plain}) {done}")


@click.command("spy")
@click.argument("call_id")
@click.option("--listen", "listen", metavar="EXT", default=None,
              help="Ring EXT; it hears both sides and is heard by nobody.")
@click.option("--whisper", "whisper", metavar="EXT", default=None,
              help="Ring EXT; it hears both sides and is heard by the agent only (coaching).")
@control_options
def spy(call_id: str, listen: str | None, whisper: str | None, config_path: Path,
        socket_path: Path | None, as_json: bool) -> None:
    """Put a supervisor's phone on bridged call CALL_ID (see pbx calls): --listen or --whisper."""
    if (listen is None) == (whisper is None):
        raise click.UsageError("give exactly one of --listen EXT or --whisper EXT")
    mode, extension = ("listen", listen) if listen is not None else ("whisper", whisper)
    result = ask(config_path, socket_path, "spy",
                 {"call_id": call_id, "extension": extension, "mode": mode}, as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(f"{cell(result['extension']).plain} on call {cell(result['call_id']).plain} "
               f"({result['mode']})")


@click.command("consult")
@click.argument("call_id")
@click.argument("extension")
@control_options
def consult(call_id: str, extension: str, config_path: Path, socket_path: Path | None,
            as_json: bool) -> None:
    """Bring EXTENSION into bridged call CALL_ID: caller, agent and consultant hear each other
    (the agent's phone does the same with *3EXT#)."""
    result = ask(config_path, socket_path, "spy",
                 {"call_id": call_id, "extension": extension, "mode": "consult"},
                 as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(f"{cell(result['extension']).plain} joined call {cell(result['call_id']).plain}")

