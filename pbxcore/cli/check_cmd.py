"""`pbx check`: validate pbx.toml and the prompts under sounds/ without starting anything."""

from __future__ import annotations

from pathlib import Path

import click

from pbxcore.cli.common import config_option, load_or_exit, shown
from pbxcore.config import check_prompts


@click.command("check")
@config_option
def check(config_path: Path) -> None:
    """Validate the config (and every .wav under sounds/); print FILE:LINE: reason per problem
    (warnings, such as a missing queue alert program, are printed but do not fail)."""
    cfg = load_or_exit(config_path)
    for warning in cfg.warnings:  # reported, but they do not fail the check
        click.echo("warning: " + shown(warning), err=True)
    problems = check_prompts(cfg)
    for problem in problems:
        click.echo(shown(problem), err=True)
    if problems:
        raise SystemExit(1)
    queues = f", {len(cfg.queues)} queues" if cfg.queues else ""
    click.echo(f"config OK: {len(cfg.routes)} routes, {len(cfg.users)} users{queues}")
