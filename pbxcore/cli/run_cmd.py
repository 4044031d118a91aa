"""`pbx run`: start the switch on a config (the server is imported only here, lazily)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from pbxcore.cli.common import config_option, load_or_exit
from pbxcore.config import Config, ListenAddress, parse_listen


@click.command("run")
@config_option
@click.option("--watch/--no-watch", default=True, show_default=True,
              help="Reload pbx.toml and the scripts directory when they change.")
@click.option("--loop", "loop", type=click.Choice(["asyncio", "uvloop", "auto"]),
              default="asyncio", show_default=True, envvar="PBX_LOOP",
              help="Event loop. asyncio spawns per-event scripts fastest (vfork); uvloop "
                   "relays RTP about 2.5 times cheaper but spawns with fork: for nodes that "
                   "bridge many calls with worker or webhook routes. auto: uvloop if installed.")
@click.option("--listen", "listen", multiple=True, metavar="TRANSPORT:HOST:PORT",
              help="Listen here instead of the config's [sip] listen (repeatable), e.g. "
                   "--listen udp:127.0.0.1:5070 --listen tcp:127.0.0.1:5070.")
@click.option("--log-format", "log_format", type=click.Choice(["text", "json"]), default=None,
              envvar="PBX_LOG_FORMAT",
              help="text lines, or one JSON object per line with the call id "
                   "(default: [log] format, else text).")
def run(config_path: Path, watch: bool, loop: str, listen: tuple[str, ...],
        log_format: str | None) -> None:
    """Run the switch until interrupted (SIGINT/SIGTERM hang up live calls with BYE)."""
    config = load_or_exit(config_path)
    from pbxcore.control.server import ControlError
    if listen:
        config = with_listen(config, listen)
    from pbxcore.server import run_forever  # lazy: the other commands never load the switch
    from pbxcore.transport.sip_endpoint import ListenError

    try:
        run_forever(config, watch=watch, loop=loop, log_format=log_format)
    except ControlError as exc:  # e.g. another switch already serves this control socket
        click.echo(f"pbx: {exc}", err=True)
        raise SystemExit(1) from None
    except ListenError as exc:  # a busy port is the user's to fix: one line, no traceback
        click.echo(f"{exc} ({listen_origin(config, exc.spec, bool(listen))})", err=True)
        raise SystemExit(1) from None


def with_listen(config: Config, listen: tuple[str, ...]) -> Config:
    """The config with --listen's addresses instead of [sip] listen.  [media] host follows the
    first address when it was the file's first listen host (its default)."""
    addresses: list[ListenAddress] = []
    for item in listen:
        address = parse_listen(item)
        if address is None:
            raise click.BadParameter(f"{item!r} must be udp|tcp:HOST:PORT with PORT 1-65535",
                                     param_hint="--listen")
        addresses.append(address)
    media = config.media
    old_first = config.sip.listen[0].host if config.sip.listen else None
    new_first = addresses[0].host
    if media.host == old_first and new_first not in ("0.0.0.0", "::"):
        media = dataclasses.replace(media, host=new_first)
    return dataclasses.replace(config, sip=dataclasses.replace(config.sip, listen=tuple(addresses)),
                               media=media)


def listen_origin(config: Config, spec: object, overridden: bool) -> str:
    """Where the address that failed came from: `[sip] listen in FILE:LINE` or `--listen`."""
    if overridden:
        return "--listen"
    for address in config.sip.listen:
        same = (getattr(spec, "transport", None), getattr(spec, "host", None),
                getattr(spec, "port", None)) == (address.transport, address.host, address.port)
        if same and address.line:
            return f"[sip] listen in {_relative(config.path)}:{address.line}"
    return f"[sip] listen's default; {_relative(config.path)} sets none"


def _relative(path: Path) -> Path:
    """The file relative to the working directory when it lies below it (as `shown` does)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
