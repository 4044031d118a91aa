"""`pbx replay PATH...`: run fixtures against their scripts; readable diffs; JSON and JUnit out."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from pbxcore.cli.common import cell
from pbxcore.script.sanitize import printable
from pbxcore.testing.fixture import find_fixtures
from pbxcore.testing.replay import FixtureResult, StepResult, replay_paths
from pbxcore.testing.report import junit_xml, result_json, step_title
from pbxcore.testing.transport import TRANSPORT_NAMES

_DIFF_STYLE = {"- ": "red", "+ ": "green", "  ": "dim"}


def _shown(path: Path) -> str:
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def _step_line(step: StepResult) -> Text:
    line = Text("  ")
    line.append("ok  " if step.passed else "FAIL", style="green" if step.passed else "bold red")
    line.append(printable(f" {step_title(step)}"))
    if step.actions:
        line.append(printable("  → " + "; ".join(a.to_text() for a in step.actions)),
                    style="dim")
    elif step.error is not None:
        line.append(printable(f"  → error: {step.error}"), style="yellow")
    return line


def _failure(console: Console, step: StepResult) -> None:
    console.print(cell(f"       {step.message}", "red", keep_lines=True))
    if step.diff:
        body = Text()
        body.append("--- expected\n", style="red")
        body.append("+++ actual (script output)\n", style="green")
        for row in step.diff:
            body.append(printable(row) + "\n", style=_DIFF_STYLE.get(row[:2], ""))
        body.rstrip()
        console.print(Panel(body, title="diff", title_align="left", expand=False))
    if step.error is not None:
        facts = f"script {step.script}"
        if step.exit_status is not None:
            facts += f", exit status {step.exit_status}"
        console.print(Text(f"       {facts}", style="dim"))
    if step.stderr.strip():
        console.print(Panel(cell(step.stderr.rstrip("\n"), keep_lines=True), title="stderr", title_align="left",
                            expand=False))


def render(console: Console, results: list[FixtureResult]) -> None:
    for r in results:
        mark = "[green]PASS[/]" if r.passed else "[bold red]FAIL[/]"
        console.print(f"{mark} [bold]{escape(printable(r.name))}[/]  [dim]{escape(printable(r.shown))}[/]")
        if r.error is not None:
            console.print(cell(f"  {r.error}", "red", keep_lines=True))
        for step in r.steps:
            console.print(_step_line(step))
            if not step.passed:
                _failure(console, step)
    passed = sum(r.passed for r in results)
    style = "green" if passed == len(results) else "bold red"
    console.print(Text(f"{passed} of {len(results)} fixtures passed", style=style))


@click.command("replay")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--transport", type=click.Choice(TRANSPORT_NAMES), default=None,
              help="Run every fixture through this transport (default: each fixture's own).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--junit", "junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write JUnit XML to FILE (one testcase per fixture).")
def replay(paths: tuple[Path, ...], transport: str | None, as_json: bool,
           junit: Path | None) -> None:
    """Replay call fixtures (files, or folders searched for *.json fixtures) against scripts.

    Each step's event goes through the real script runner; its actions are compared with the
    fixture's. Exit status 0 when every fixture passes, 1 otherwise.
    """
    files = find_fixtures(paths)
    if not files:
        raise click.UsageError("no fixtures found (a fixture is a *.json file with a "
                               "\"pbxcore_fixture\" key)")
    results = asyncio.run(replay_paths(files, transport_name=transport,
                                       labels=[_shown(f) for f in files]))
    if junit is not None:
        junit.write_bytes(junit_xml(results))
    if as_json:
        click.echo(json.dumps({"passed": all(r.passed for r in results),
                               "fixtures": [result_json(r) for r in results]}, indent=2))
    else:
        render(Console(highlight=False), results)
    if not all(r.passed for r in results):
        raise SystemExit(1)
