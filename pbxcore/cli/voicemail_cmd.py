"""`pbx voicemail list|play|delete|mark BOX`: a box's messages from the CLI.

The same operations an owner has on the phone (pbxcore/call/voicemail_menu.py), on the store's
index and the WAV files under the recordings directory.  A CLI has no speaker, so `play` prints
the WAV's path (or copies it to --out) and marks the message heard.  `delete` keeps the index
row (status deleted, for the record) and removes the WAV.  After a change a running switch is
told over its control socket (`voicemail_changed`), so the owners' lamps follow at once; when
no switch runs, nothing is lit anyway and the phones get the state when they next subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table

from pbxcore.cli.common import (
    cell,
    config_option,
    json_text,
    load_or_exit,
    open_config_store,
    utc_text,
)
from pbxcore.config import ConfigError, read_control_path
from pbxcore.control.protocol import encode_request
from pbxcore.script.sanitize import printable
from pbxcore.store import Store, VoicemailMessage

T = TypeVar("T")


def _with_store(config_path: Path, op: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await open_config_store(config_path)
        try:
            return await op(store)
        finally:
            await store.close()

    return asyncio.run(go())


def _recordings(config_path: Path, box: str) -> Path:
    config = load_or_exit(config_path)
    if config.voicemail_box(box) is None:
        click.echo(f"warning: {printable(box)} is no [[voicemail]] box of "
                   f"{config_path}", err=True)
    return config.paths.recordings


def _tell_switch(config_path: Path, box: str) -> None:
    """Best effort: a switch that is not running (or not reachable) is no error here."""
    try:
        path = read_control_path(config_path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(path))
            sock.sendall(encode_request("voicemail_changed", {"box": box}))
            sock.recv(4096)
    except (OSError, ConfigError):
        pass


def _message(config_path: Path, box: str, message_id: int) -> VoicemailMessage:
    got = _with_store(config_path, lambda s: s.voicemail_message(message_id))
    if got is None or got.box != box:
        raise click.ClickException(f"no message {message_id} in box {printable(box)}")
    return got


def render(box: str, messages: list[VoicemailMessage]) -> Table:
    new = sum(m.status == "new" for m in messages)
    table = Table(title=f"box {printable(box)}: {len(messages)} messages, {new} new "
                  "(times UTC)", title_justify="left")
    for name in ("id", "time", "caller", "name", "seconds", "status", "recording"):
        table.add_column(name, overflow="fold", no_wrap=name in ("id", "time"))
    for m in messages:
        table.add_row(str(m.id), utc_text(m.time), cell(m.caller), cell(m.caller_name),
                      f"{m.seconds:.1f}", m.status, cell(m.recording))
    return table


@click.group("voicemail")
def voicemail() -> None:
    """Voicemail boxes: list, play, delete and mark messages."""


@voicemail.command("list")
@config_option
@click.argument("box")
@click.option("--all", "everything", is_flag=True, help="Deleted messages too.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_(config_path: Path, box: str, everything: bool, as_json: bool) -> None:
    """The messages of BOX, oldest first (new and heard; --all: deleted too)."""
    async def fetch(store: Store) -> list[VoicemailMessage]:
        rows = await store.voicemail_messages(box)
        if everything:
            rows += await store.voicemail_messages(box, status="deleted")
            rows.sort(key=lambda m: (m.time, m.id))
        return rows

    messages = _with_store(config_path, fetch)
    if as_json:
        click.echo(json_text([m.to_json() for m in messages]))
    else:
        Console(highlight=False).print(render(box, messages))


@voicemail.command("play")
@config_option
@click.argument("box")
@click.argument("message_id", metavar="ID", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Copy the WAV here instead of printing its path.")
@click.option("--json", "as_json", is_flag=True, help="Print the message as JSON.")
def play(config_path: Path, box: str, message_id: int, out: Path | None, as_json: bool) -> None:
    """Print the WAV path of message ID of BOX (or copy it to --out) and mark it heard."""
    recordings = _recordings(config_path, box)
    message = _message(config_path, box, message_id)
    if message.status == "deleted":
        raise click.ClickException(f"message {message_id} of {printable(box)} is deleted")
    wav = recordings / message.recording
    if not wav.is_file():
        raise click.ClickException(f"the WAV of message {message_id} is missing: {wav}")
    if out is not None:
        shutil.copyfile(wav, out)
    _with_store(config_path, lambda s: s.voicemail_mark(message_id, "heard"))
    _tell_switch(config_path, box)
    if as_json:
        click.echo(json_text({**message.to_json(), "status": "heard",
                              "path": str(out or wav)}))
    else:
        click.echo(printable(str(out or wav)))


@voicemail.command("delete")
@config_option
@click.argument("box")
@click.argument("message_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the message as JSON.")
def delete(config_path: Path, box: str, message_id: int, as_json: bool) -> None:
    """Delete message ID of BOX: its WAV is removed, its index row says deleted."""
    recordings = _recordings(config_path, box)
    message = _message(config_path, box, message_id)
    _with_store(config_path, lambda s: s.voicemail_mark(message_id, "deleted"))
    with contextlib.suppress(FileNotFoundError):
        (recordings / message.recording).unlink()
    _tell_switch(config_path, box)
    if as_json:
        click.echo(json_text({**message.to_json(), "status": "deleted"}))
    else:
        click.echo(f"deleted message {message_id} of {printable(box)}")


@voicemail.command("mark")
@config_option
@click.argument("box")
@click.argument("message_id", metavar="ID", type=int)
@click.argument("status", type=click.Choice(["new", "heard"]))
@click.option("--json", "as_json", is_flag=True, help="Print the message as JSON.")
def mark(config_path: Path, box: str, message_id: int, status: str, as_json: bool) -> None:
    """Mark message ID of BOX new or heard."""
    message = _message(config_path, box, message_id)
    if message.status == "deleted":
        raise click.ClickException(f"message {message_id} of {printable(box)} is deleted")
    _with_store(config_path, lambda s: s.voicemail_mark(message_id, status))
    _tell_switch(config_path, box)
    if as_json:
        click.echo(json_text({**message.to_json(), "status": status}))
    else:
        click.echo(f"message {message_id} of {printable(box)} is {status}")
