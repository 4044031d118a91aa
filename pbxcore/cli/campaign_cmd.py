"""`pbx campaign run LIST.csv --script S`: automatic outbound notification dialling through the
running switch (the driver is cli/campaign_run.py), with a rich progress bar."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pbxcore.cli.campaign_run import Campaign, Plan, counts, parse_window
from pbxcore.cli.common import config_option, open_config_store
from pbxcore.cli.control import EXIT_USAGE, fail, socket_path
from pbxcore.store.campaigns import CampaignRow


@click.group("campaign")
def campaign() -> None:
    """Outbound notification campaigns."""


@campaign.command("run")
@click.argument("list_path", metavar="LIST.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--script", required=True, help="Script run on each answered call "
              "(under [paths] scripts); the row's columns are its PBX_VAR_* variables.")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Calls out at once.")
@click.option("--rate", type=click.FloatRange(0.01, 1000), default=1.0, show_default=True,
              help="New calls a second, at most.")
@click.option("--retries", type=click.IntRange(0, 20), default=0, show_default=True,
              help="Tries after the first for a busy, unanswered or failed row.")
@click.option("--window", default=None, metavar="HH:MM-HH:MM",
              help="Only place calls inside this local time window, e.g. 09:00-20:00.")
@click.option("--backoff", type=click.FloatRange(0, 86400), default=60.0, show_default=True,
              help="Seconds before the first retry of a row; doubled for each later one.")
@click.option("--ring-timeout", type=click.FloatRange(1, 600), default=None,
              help="Seconds a number rings (default: [originate] ring_timeout).")
@config_option
@click.option("--socket", "socket_override", type=click.Path(path_type=Path), default=None,
              envvar="PBX_SOCKET", help="The control socket (default: [paths] control).")
def run(list_path: Path, script: str, concurrency: int, rate: float, retries: int,
        window: str | None, backoff: float, ring_timeout: float | None, config_path: Path,
        socket_override: Path | None) -> None:
    """Call every row's number; when answered, run --script with the row's columns as call
    variables. Results go to the store and LIST.results.csv; run it again to resume."""
    try:
        parsed = parse_window(window) if window is not None else None
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    plan = Plan(list_path, script, socket_path(config_path, socket_override), concurrency,
                rate, retries, parsed, backoff, ring_timeout)
    rows = asyncio.run(_run(config_path, plan))
    c = counts(rows, lambda r: r.status == "answered" or r.attempts > retries)
    click.echo(f"{len(rows)} rows: {c['answered']} answered, {c['busy']} busy, "
               f"{c['noanswer']} no answer, {c['failed']} failed; results in "
               f"{list_path.with_name(list_path.stem + '.results.csv')}")


async def _run(config_path: Path, plan: Plan) -> list[CampaignRow]:
    store = await open_config_store(config_path)
    console = Console(stderr=True, highlight=False)
    progress = Progress(TextColumn("[bold]campaign"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=console, transient=False)
    task = progress.add_task("", total=None)
    driver: Campaign

    def changed(rows: list[CampaignRow]) -> None:
        c = counts(rows, driver.final)
        progress.update(task, total=len(rows), completed=c["done"], description=(
            f"answered {c['answered']}  busy {c['busy']}  no answer {c['noanswer']}  "
            f"failed {c['failed']}  calling {c['calling']}"))

    driver = Campaign(store, plan, changed)
    try:
        with progress:
            return await driver.run()
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    finally:
        await store.close()
