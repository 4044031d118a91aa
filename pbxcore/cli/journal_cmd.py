"""`pbx journal`: the queue journal (Asterisk queue_log events) from the config's store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pbxcore.cli.common import config_option, open_config_store, parse_since, utc_text
from pbxcore.script.sanitize import printable
from pbxcore.store import JournalEntry


async def _fetch(config_path: Path, *, queue: str | None, since: datetime | None,
                 call_id: str | None, limit: int) -> list[JournalEntry]:
    store = await open_config_store(config_path)
    try:
        return await store.journal(queue=queue, since=since, call_id=call_id, limit=limit)
    finally:
        await store.close()


def render(entries: list[JournalEntry]) -> Table:
    rows = "1 entry" if len(entries) == 1 else f"{len(entries)} entries"
    table = Table(title=f"{rows}, oldest first (times UTC)", title_justify="left")
    nodes = any(e.node for e in entries)
    columns = ["time", "queue", "call id", "agent", "event", "data"] + (["node"] if nodes else [])
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in ("time", "event"))
    for e in entries:
        data = "|".join(e.data)  # queue_log's own separator between data1..data5
        cells = [utc_text(e.time), e.queue, e.call_id, e.agent, e.event, data]
        # Queue names, agents and data can hold caller-made text (an exit key, a caller id):
        # Text keeps it from being read as markup, printable from driving the terminal.
        table.add_row(*(Text(printable(x)) for x in cells + ([e.node or ""] if nodes else [])))
    return table


@click.command("journal")
@config_option
@click.option("--queue", help="Only this queue (NONE: agent facts about no one queue).")
@click.option("--since", help="Only entries at or after this: an age (30m, 1h, 2d, 1w), today, "
              "yesterday (from 00:00 UTC) or an ISO time (no zone means UTC).")
@click.option("--call", "call_id", help="Only this call id (PBX_CALL_ID).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="The newest N entries (shown oldest first).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def journal(config_path: Path, queue: str | None, since: str | None, call_id: str | None,
            limit: int, as_json: bool) -> None:
    """Show the queue journal: every queue fact with Asterisk's queue_log event names
    (ENTERQUEUE, CONNECT, ABANDON, ...), read from the store named in the config."""
    start = parse_since(since, datetime.now(UTC)) if since else None
    entries = asyncio.run(_fetch(config_path, queue=queue, since=start, call_id=call_id,
                                 limit=limit))
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2, ensure_ascii=False))
    else:
        Console(highlight=False).print(render(entries))
