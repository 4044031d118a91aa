"""Shared pieces of the CLI commands: the --config option, loading, opening the store, times."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.text import Text

from pbxcore.config import Config, ConfigError, Problem, format_problem, load_config, read_store_dsn
from pbxcore.script.sanitize import json_printable, printable
from pbxcore.store import Store, open_store, redact_dsn, sqlite_path

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def config_option(fn: F) -> F:
    """--config FILE, defaulting to $PBX_CONFIG, then ./pbx.toml."""
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        envvar="PBX_CONFIG", default="pbx.toml", show_default="$PBX_CONFIG or pbx.toml",
        help="The switch's pbx.toml.")(fn)


def shown(problem: Problem) -> str:
    """A problem line with the file relative to the working directory when it lies below it."""
    path, line, reason = problem
    try:
        path = path.relative_to(Path.cwd())
    except ValueError:
        pass
    return format_problem((path, line, reason))


def load_or_exit(config_path: Path) -> Config:
    """The loaded config, or every problem on stderr and exit status 1."""
    try:
        return load_config(config_path)
    except ConfigError as e:
        for problem in e.problems:
            click.echo(shown(problem), err=True)
        raise SystemExit(1) from None


async def open_config_store(config_path: Path) -> Store:
    """The store named by the config's [store] dsn (the rest of the config may be broken)."""
    try:
        dsn = read_store_dsn(config_path)
    except ConfigError as e:
        raise click.ClickException("\n".join(shown(p) for p in e.problems)) from None
    base = config_path.absolute().parent
    if dsn.startswith("sqlite:///") and not sqlite_path(dsn, base).exists():
        raise click.ClickException(f"no call database at {sqlite_path(dsn, base)} "
                                   "(has `pbx run` been started with this config?)")
    try:
        return await open_store(dsn, base_dir=base)
    except Exception as e:  # a connection refused or a locked file: say so, no traceback
        raise click.ClickException(f"cannot open the store {redact(dsn)}: {e}") from None


redact = redact_dsn  # the store's own: `pbx status` shows the DSN the same way


def parse_since(text: str, now: datetime) -> datetime:
    """'90s', '15m', '1h', '2d', '1w' before ``now``; 'today' or 'yesterday' (from 00:00 UTC,
    the zone every time is shown in); or an ISO 8601 time (no zone means UTC)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    day = {"today": 0, "yesterday": 1}.get(text.strip().lower())
    if day is not None:
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=day)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: use an age like 1h or 2d, today, yesterday, or an "
                                 "ISO time like 2024-05-01T09:00") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def utc_text(when: datetime | None) -> str:
    return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")



def cell(text: str, style: str = "", *, keep_lines: bool = False) -> Text:
    """Text from a call (caller names, script output, causes) for a rich table or panel: a Text,
    so ``[bold]`` is printed and never read as markup, and escaped by the one function logs use
    (`printable`), so a newline cannot forge a row and ESC/OSC sequences never reach the terminal."""
    return Text(printable(text, keep_lines=keep_lines), style=style)


def json_text(value: Any) -> str:
    """``value`` as indented JSON that is safe to print on a terminal and still valid JSON."""
    return json_printable(value)
