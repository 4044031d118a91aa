"""`pbx run`: start the switch on a config (the server is imported only here, lazily)."""

from __future__ import annotations

from pathlib import Path

import click

from pbxcore.cli.common import config_option, load_or_exit


@click.command("run")
@config_option
def run(config_path: Path) -> None:
    """Run the switch until interrupted."""
    config = load_or_exit(config_path)
    from pbxcore.server import run_forever  # lazy: the other commands never load the switch

    run_forever(config)
