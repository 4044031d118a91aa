"""`pbx top`: the live monitor — one `top` request a second, drawn full screen with rich Live.

Keys: 1-4 pick a pane (calls, queues, agents, trunks), tab cycles, q (or Ctrl-C) quits.  The
terminal goes into cbreak mode (keys arrive one by one, unechoed; Ctrl-C still raises SIGINT)
and rich's alternate screen; both are undone on every way out (q, Ctrl-C, SIGTERM, an error),
so the shell is left as it was.  If the switch stops answering, the screen keeps the last
figures with the error in red and retries every second; `--once` prints one frame and exits
(for scripts, cron mails and a quick look).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import termios
import tty
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from pbxcore.cli.control import _read_line, ask, control_options, dumps
from pbxcore.cli.control import socket_path as find_socket
from pbxcore.cli.top_view import PANES, render_top
from pbxcore.control.protocol import ProtocolError, decode_response, encode_request

REFRESH = 1.0  # seconds between requests
MAX_CALLS = 500  # live calls asked for per refresh: more than any screen has rows


def fetch(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """One `top` answer, or None and why not — never exits (the screen shows the error)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.connect(str(path))
        sock.sendall(encode_request("top", {"max_calls": MAX_CALLS}))
        line = _read_line(sock)
        response = decode_response(line) if line else None
    except (OSError, ProtocolError) as exc:
        return None, f"switch not answering on {path}: {exc}"
    finally:
        sock.close()
    if response is None:
        return None, "the switch closed the connection"
    if not response.ok:
        return None, response.error
    return response.result, None


@contextlib.contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Keys one at a time without echo; the old terminal settings come back on any exit."""
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, old)


def read_keys(fd: int, timeout: float) -> str:
    """What was typed within `timeout` seconds ("" if nothing)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return ""
    return os.read(fd, 64).decode(errors="replace")


def next_pane(pane: str, keys: str) -> str | None:
    """The pane after `keys` were pressed, None to quit."""
    for key in keys:
        if key in ("q", "Q", "\x03", "\x04"):
            return None
        if key in "1234":
            pane = PANES[int(key) - 1]
        elif key == "\t":
            pane = PANES[(PANES.index(pane) + 1) % len(PANES)]
    return pane


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM/SIGHUP leave through the same finally blocks as Ctrl-C


@click.command("top")
@control_options
@click.option("--pane", type=click.Choice(PANES), default="calls", show_default=True,
              help="The pane shown first.")
@click.option("--once", is_flag=True, help="Print one frame (at the terminal's size) and exit.")
def top(config_path: Path, socket_path: Path | None, as_json: bool, pane: str,
        once: bool) -> None:
    """The live monitor: lines in use, calls per route and DID, calls/s, queues, agents,
    trunks, script errors; refreshed every second.  Keys: 1-4 or tab switch panes, q quits."""
    # The first request goes through ask(): a switch that is not running is the usual
    # one-line error and exit code, before the screen is taken over.
    data = ask(config_path, socket_path, "top", None if as_json else {"max_calls": MAX_CALLS},
               as_json=as_json)
    if as_json:
        click.echo(dumps(data))
        return
    console = Console(highlight=False)
    if once or not sys.stdin.isatty() or not console.is_terminal:
        width, height = console.size
        console.print(render_top(data, pane, width, height))
        return
    path = find_socket(config_path, socket_path)
    fd = sys.stdin.fileno()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    error: str | None = None
    with contextlib.suppress(KeyboardInterrupt), cbreak(fd), \
            Live(console=console, screen=True, auto_refresh=False,
                 redirect_stdout=False, redirect_stderr=False) as live:
        current: str | None = pane
        while current is not None:
            width, height = console.size
            live.update(render_top(data, current, width, height, error), refresh=True)
            keys = read_keys(fd, REFRESH)
            current = next_pane(current, keys)
            if current is not None and not keys:
                got, error = fetch(path)
                data = got if got is not None else data
