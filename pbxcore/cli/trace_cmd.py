"""`pbx trace CALL_ID`: everything that happened in one call, script runs in full."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pbxcore.cli.cdr_cmd import render as render_cdrs
from pbxcore.cli.common import cell, config_option, json_text, open_config_store
from pbxcore.config import ConfigError, load_config
from pbxcore.store import Cdr, TraceEntry
from pbxcore.testing.capture import CaptureError, fixture_from_trace

# Shown as their own blocks, in this order; every other key is listed as "key: value".
_BLOCKS = ("env", "stdin", "stdout", "stderr")
_STYLE = {"error": "bold red", "script": "bold cyan", "event": "bold green", "action": "bold",
          "sip": "magenta", "note": "dim"}


async def _fetch(config_path: Path, call_id: str) -> tuple[Cdr | None, list[TraceEntry]]:
    store = await open_config_store(config_path)
    try:
        return await store.cdr(call_id), await store.trace(call_id)
    finally:
        await store.close()


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _block(name: str, value: Any) -> RenderableType:
    if isinstance(value, Mapping):
        table = Table(show_header=False, box=None, padding=(0, 1))
        table.add_column(style="dim")
        table.add_column(overflow="fold")
        for k, v in value.items():
            table.add_row(cell(str(k)), cell(_value(v)))
        body: RenderableType = table if value else Text("(empty)", style="dim")
    elif isinstance(value, str) and name == "stdin":
        try:  # the event JSON, pretty-printed when it is JSON
            body = cell(json.dumps(json.loads(value), indent=2, ensure_ascii=False),
                        keep_lines=True)
        except ValueError:
            body = cell(value, keep_lines=True)
    else:
        text = _value(value).removesuffix("\n")  # a last newline would show as a blank line
        body = cell(text, keep_lines=True) if text else Text("(empty)", style="dim")
    return Panel(body, title=name, title_align="left", expand=True)


def _entry(entry: TraceEntry, first: TraceEntry) -> Iterator[RenderableType]:
    offset = (entry.time - first.time).total_seconds()
    head = Text(f"#{entry.seq} ", style="bold")
    head.append(entry.kind.upper(), style=_STYLE.get(entry.kind, ""))
    head.append(f"  {entry.time.strftime('%H:%M:%S.%f')[:-3]} UTC  +{offset:.3f}s", style="dim")
    yield head
    facts = Table(show_header=False, box=None, padding=(0, 1))
    facts.add_column(style="dim")
    facts.add_column(overflow="fold")
    for key, value in entry.data.items():
        if key not in _BLOCKS:
            facts.add_row(cell(str(key)), cell(_value(value)))
    if facts.row_count:
        yield facts
    for key in _BLOCKS:
        if key in entry.data:
            yield _block(key, entry.data[key])


@click.command("trace")
@click.argument("call_id")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the entries as a JSON list.")
@click.option("--fixture", "fixture", is_flag=False, flag_value="", default=None,
              metavar="[FILE]", help="Write the call as a replay fixture (`pbx replay FILE`) "
              "to FILE, default CALL_ID.json.")
def trace(call_id: str, config_path: Path, as_json: bool, fixture: str | None) -> None:
    """Show the trace of one call: events, script runs (env, stdin, stdout, stderr, exit), actions."""
    cdr, entries = asyncio.run(_fetch(config_path, call_id))
    if cdr is None and not entries:
        raise click.ClickException(f"no call {call_id!r} in the store (see `pbx cdr`)")
    if fixture is not None:
        _write_fixture(Path(fixture or f"{call_id}.json"), entries, config_path)
        return
    if as_json:
        click.echo(json_text([e.to_json() for e in entries]))
        return
    parts: list[RenderableType] = []
    if cdr is not None:
        parts.append(render_cdrs([cdr]))
    for entry in entries:
        parts.extend(_entry(entry, entries[0]))
    if not entries:
        parts.append(Text("(no trace entries)", style="dim"))
    Console(highlight=False).print(Group(*parts))


def _route_facts(config_path: Path, script: str) -> dict[str, Any]:
    """Timeout, transport and scripts directory of the route that ran `script`, if loadable."""
    try:
        config = load_config(config_path)
    except (ConfigError, OSError):
        return {}  # the trace alone still makes a fixture, with the default timeout
    facts: dict[str, Any] = {"scripts_dir": config.paths.scripts}
    for route in config.routes:
        if Path(route.script).resolve() == Path(script).resolve():
            facts.update(timeout=route.timeout, transport=getattr(route, "transport", "process"),
                          worker=getattr(route, "worker", None), url=getattr(route, "url", None))
            break
    return facts


def _write_fixture(path: Path, entries: list[TraceEntry], config_path: Path) -> None:
    runs = [dict(e.data) for e in entries if e.kind == "script"]
    facts = _route_facts(config_path, str(runs[0].get("script", ""))) if runs else {}
    try:
        fixture = fixture_from_trace(runs, fixture_dir=path.absolute().parent, **facts)
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None
    path.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {path} ({len(fixture['steps'])} steps); check it with `pbx replay {path}`")
