"""`pbx check`: validate pbx.toml and the prompts under sounds/ without starting anything."""

from __future__ import annotations

from pathlib import Path

import click

from pbxcore.cli.common import config_option, load_or_exit, shown
from pbxcore.config import Problem, check_prompts


def warning(problem: Problem) -> Problem:
    path, line, reason = problem
    return path, line, f"warning: {reason}"


@click.command("check")
@config_option
def check(config_path: Path) -> None:
    """Validate the config (and every .wav under sounds/); print FILE:LINE: reason per problem.

    Warnings do not fail the check (exit status 0): a route whose program is missing or not
    executable (`pbx run` starts anyway and that route's calls get its fallback), a queue's
    missing alert program (calls still queue)."""
    cfg = load_or_exit(config_path)
    for problem in cfg.warnings:
        click.echo(shown(warning(problem)), err=True)
    problems = check_prompts(cfg)
    for problem in problems:
        click.echo(shown(problem), err=True)
    if problems:
        raise SystemExit(1)
    queues = f", {len(cfg.queues)} queues" if cfg.queues else ""
    note = f", {len(cfg.warnings)} warnings" if cfg.warnings else ""
    click.echo(f"config OK: {len(cfg.routes)} routes, {len(cfg.users)} users{queues}{note}")
