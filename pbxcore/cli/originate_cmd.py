"""`pbx originate FROM TO|--script S`: place a call through the running switch's control
socket (click-to-call: ring FROM, then dial TO and bridge; or run a script on the answered call).
The switch answers with the new call's id at once; follow it with `pbx calls` / `pbx cdr`."""

from __future__ import annotations

from pathlib import Path

import click

from pbxcore.cli.control import EXIT_USAGE, ask, cell, control_options, dumps, fail


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--var {pair!r}: expected NAME=VALUE", EXIT_USAGE)
        out[name] = value
    return out


@click.command("originate")
@click.argument("first", metavar="FROM")
@click.argument("to", required=False)
@click.option("--caller-id", "caller_id", default=None,
              help="The caller id the dialled party sees.")
@click.option("--script", "script", default=None,
              help="Run this script (under [paths] scripts) on the answered call instead of "
                   "dialling TO.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="A call variable (PBX_VAR_NAME); repeatable.")
@click.option("--timeout", type=click.FloatRange(1, 600), default=None,
              help="Seconds FROM (and TO) ring (default: [originate] ring_timeout).")
@control_options
def originate(first: str, to: str | None, caller_id: str | None, script: str | None,
              variables: tuple[str, ...], timeout: float | None, config_path: Path,
              socket_path: Path | None, as_json: bool) -> None:
    """Ring FROM; when it answers, dial TO and bridge them, or run --script on the call."""
    if (to is None) == (script is None):
        fail("give TO (click-to-call) or --script S, not both or neither", EXIT_USAGE)
    args: dict[str, object] = {"from": first, "vars": parse_vars(variables)}
    for key, value in (("to", to), ("script", script), ("caller_id", caller_id),
                       ("timeout", timeout)):
        if value is not None:
            args[key] = value
    result = ask(config_path, socket_path, "originate", args, as_json=as_json)
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(cell(result["call_id"]).plain)
