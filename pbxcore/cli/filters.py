"""The filters `pbx report` and `pbx cdr` share, and what they read from the config."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from pbxcore.cli.common import parse_since
from pbxcore.config import ConfigError, load_config
from pbxcore.report.load import Context
from pbxcore.report.model import DIRECTIONS, Filters

F = TypeVar("F", bound=Callable[..., Any])

WHEN = ("an age (30m, 1h, 2d, 1w), today, yesterday (from 00:00 UTC) or an ISO time "
        "(no zone means UTC)")


def filter_options(fn: F) -> F:
    """--from --to --queue --agent --direction --number --min-duration."""
    options = [
        click.option("--from", "--since", "since", help=f"Calls from this time on: {WHEN}."),
        click.option("--to", "until", help=f"Calls before this time: {WHEN}. Default: now."),
        click.option("--queue", help="Only calls that visited this queue."),
        click.option("--agent", help="Only calls an agent (extension) answered."),
        click.option("--direction", type=click.Choice(DIRECTIONS),
                     help="in: from a trunk or any caller not one of [[users]]; out: placed by "
                          "one of the switch's own extensions."),
        click.option("--number", metavar="PATTERN",
                     help="Caller or called number matching this glob (0612*, 1?0?, exact)."),
        click.option("--min-duration", type=click.FloatRange(min=0), metavar="S",
                     help="Only calls that lasted at least S seconds."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def period(since: str | None, until: str | None, now: datetime, *,
           default_since: str | None) -> tuple[datetime | None, datetime | None]:
    first = since or default_since
    start = parse_since(first, now) if first else None
    end = parse_since(until, now) if until else None
    if start is not None and end is not None and end <= start:
        raise click.BadParameter(f"--to ({end:%Y-%m-%d %H:%M:%S}) is not after --from "
                                 f"({start:%Y-%m-%d %H:%M:%S})")
    return start, end


def filters(queue: str | None, agent: str | None, direction: str | None, number: str | None,
            min_duration: float | None) -> Filters:
    return Filters(queue=queue, agent=agent, direction=direction,  # type: ignore[arg-type]
                   number=number, min_duration=min_duration)


def context(config_path: Path) -> Context:
    """Extensions, queues' service levels and members from the config; a config that does not
    load gives defaults (every call inbound, SL threshold 20 s) and says so on stderr."""
    try:
        config = load_config(config_path)
    except ConfigError:
        click.echo(f"{config_path}: the config has problems (`pbx check`); reporting with "
                   "defaults: every call inbound, service level 20 s", err=True)
        return Context()
    return Context(
        extensions=frozenset(u.extension for u in config.users),
        service_level={q.name: q.service_level for q in config.queues},
        members={q.name: frozenset(m.extension for m in q.members) for q in config.queues})


def utcnow() -> datetime:
    return datetime.now(UTC)
