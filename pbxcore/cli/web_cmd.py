"""`pbx web passwd`: an argon2id hash for `[[web.users]] password_hash` (docs/web.md)."""

from __future__ import annotations

import sys

import click

from pbxcore.web.auth import hash_password


@click.group("web")
def web() -> None:
    """The supervisor wallboard and reports in the browser ([web] in pbx.toml)."""


@web.command("passwd")
@click.option("--name", default="supervisor", show_default=True,
              help="The [[web.users]] name to print the table for.")
@click.option("--role", type=click.Choice(["supervisor", "viewer"]), default="supervisor",
              show_default=True)
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin (for scripts).")
def passwd(name: str, role: str, password_stdin: bool) -> None:
    """Ask for a password (twice) and print a [[web.users]] table with its argon2id hash,
    to paste into pbx.toml. The password itself is never printed or stored."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("use at least 8 characters")
    click.echo(f'[[web.users]]\nname = "{name}"\nrole = "{role}"\n'
               f'password_hash = "{hash_password(password)}"')
