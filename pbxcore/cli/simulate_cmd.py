"""`pbx simulate SCRIPT`: a call in the terminal, no SIP; you type the caller's keys."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from pbxcore.cli.common import cell
from pbxcore.testing.simulate import HANG_UP, Session, Simulator

_STYLE = {"event": "bold cyan", "action": "green", "error": "bold red", "stderr": "red",
          "info": "dim"}
_PREFIX = {"event": "event  ", "action": "  → ", "error": "  ! ", "stderr": "  stderr: ",
           "info": "  · "}


class ClickIO:
    """The simulation's terminal: rich for output, click.prompt for questions."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.ended = False

    def show(self, kind: str, text: str) -> None:
        self.console.print(cell(_PREFIX.get(kind, "") + text, _STYLE.get(kind, ""),
                                keep_lines=kind == "stderr"))

    def ask(self, question: str, default: str = "") -> str:
        """The caller's answer; the end of input (Ctrl-D, a piped file that ran out) is the
        caller hanging up, so the script still gets its hangup event and --save is written."""
        if self.ended:
            return HANG_UP
        try:
            answer: str = click.prompt(f"  ? {question}", default=default,
                                       show_default=bool(default))
        except click.exceptions.Abort:  # click turns EOF (and Ctrl-C) into Abort
            self.ended = True
            self.console.print(Text("  · end of input: the caller hangs up", style="dim"))
            return HANG_UP
        return answer.strip()


def _env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"{pair!r}: use NAME=VALUE", param_hint="--env")
        env[name] = value
    return env


@click.command("simulate")
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--caller", required=True, help="Caller number (PBX_CALLER).")
@click.option("--called", required=True, help="Dialled number (PBX_CALLED).")
@click.option("--caller-name", default="", help="Caller display name.")
@click.option("--language", default="en", show_default=True, help="PBX_LANGUAGE.")
@click.option("--env", "env_pairs", multiple=True, metavar="NAME=VALUE",
              help="Extra environment for the script, like a route's env (repeatable).")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds the script may run per event.")
@click.option("--scripts", "scripts_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory `goto` targets are in (default: the script's directory).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the session as a replay fixture.")
def simulate(script: Path, caller: str, called: str, caller_name: str, language: str,
             env_pairs: tuple[str, ...], timeout: float, scripts_dir: Path | None,
             save: Path | None) -> None:
    """Run SCRIPT as one call in the terminal: see its actions, type the outcomes.

    A gather asks for the keys (Enter = timeout), a record for how it ended, a queue whether an
    agent answered or why the caller left (timeout, full, empty, exit_key, callback); goto is
    followed; `h` at any question, or the end of input, hangs up (the script gets its hangup event).
    """
    console = Console(highlight=False)
    env = _env(env_pairs)
    sim = Simulator(script, ClickIO(console), caller=caller, called=called,
                    caller_name=caller_name, language=language, env=env, timeout=timeout,
                    scripts=scripts_dir)
    session: Session = asyncio.run(sim.run())
    if save is not None:
        fixture = session.fixture(save, name=f"simulated call: {caller} to {called}",
                                  timeout=timeout, env=env, scripts=sim.scripts)
        save.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        console.print(Text(f"saved {save} ({len(fixture['steps'])} steps); "
                           f"replay it with `pbx replay {save}`", style="bold"))
