"""`pbx run`: start the switch on a config (the server is imported only here, lazily)."""

from __future__ import annotations

from pathlib import Path

import click

from pbxcore.cli.common import config_option, load_or_exit


@click.command("run")
@config_option
@click.option("--watch/--no-watch", default=True, show_default=True,
              help="Reload pbx.toml and the scripts directory when they change.")
@click.option("--loop", "loop", type=click.Choice(["asyncio", "uvloop", "auto"]),
              default="asyncio", show_default=True, envvar="PBX_LOOP",
              help="Event loop. asyncio spawns per-event scripts fastest (vfork); uvloop "
                   "relays RTP about 2.5 times cheaper but spawns with fork: for nodes that "
                   "bridge many calls with worker or webhook routes. auto: uvloop if installed.")
@click.option("--log-format", "log_format", type=click.Choice(["text", "json"]), default=None,
              envvar="PBX_LOG_FORMAT",
              help="text lines, or one JSON object per line with the call id "
                   "(default: [log] format, else text).")
def run(config_path: Path, watch: bool, loop: str, log_format: str | None) -> None:
    """Run the switch until interrupted (SIGINT/SIGTERM hang up live calls with BYE)."""
    config = load_or_exit(config_path)
    from pbxcore.control.server import ControlError
    from pbxcore.server import run_forever  # lazy: the other commands never load the switch

    try:
        run_forever(config, watch=watch, loop=loop, log_format=log_format)
    except ControlError as exc:  # e.g. another switch already serves this control socket
        click.echo(f"pbx: {exc}", err=True)
        raise SystemExit(1) from None
