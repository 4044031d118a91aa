"""Talking to a running switch over its control socket, for the live commands (`pbx calls`,
`pbx hangup`, `pbx status`, ...): finding the socket, one request, the documented exit codes,
and the terminal escaping every live command uses.

Exit codes (docs/operations.md):
  0  done
  1  the switch refused: the answer was an error (no such call, config refused, no queues)
  2  usage: bad arguments, or the config naming the socket cannot be read
  3  the switch is not running: no socket file, or nothing answers on it (stale)
  4  the socket is not accessible: permission denied (run as the switch's user)
  5  no usable answer: the switch closed the connection, timed out or sent garbage
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.text import Text

from pbxcore.cli.common import config_option, shown
from pbxcore.config import ConfigError, read_control_path
from pbxcore.control.protocol import (
    MAX_RESPONSE,
    ProtocolError,
    decode_response,
    encode_request,
)
from pbxcore.script.sanitize import json_printable, printable

F = TypeVar("F", bound=Callable[..., Any])

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_NO_ACCESS = 4
EXIT_NO_ANSWER = 5
TIMEOUT = 40.0  # seconds: the switch gives a command 30 s, then answers `timeout` itself


def control_options(fn: F) -> F:
    """--config, --socket and --json: what every live command takes."""
    fn = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")(fn)
    fn = click.option("--socket", "socket_path", type=click.Path(path_type=Path),
                      envvar="PBX_SOCKET", default=None,
                      help="The control socket (default: [paths] control of --config).")(fn)
    return config_option(fn)


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr (`pbx: ...`, escaped), then exit with `code`."""
    click.echo(f"pbx: {printable(message)}", err=True)
    raise SystemExit(code)


def socket_path(config_path: Path, override: Path | None) -> Path:
    if override is not None:
        return override
    try:
        return read_control_path(config_path)
    except ConfigError as exc:
        lines = "; ".join(shown(p) for p in exc.problems)
        fail(f"cannot find the control socket: {lines} (or give --socket PATH)", EXIT_USAGE)


def ask(config_path: Path, override: Path | None, cmd: str,
        args: Mapping[str, Any] | None = None, *, as_json: bool = False) -> Any:
    """Send one request; the result, or a one-line error and the documented exit code.  With
    `as_json`, a refusal is printed as the switch's JSON error object too (on stdout)."""
    path = socket_path(config_path, override)
    response = _exchange(path, encode_request(cmd, args))
    if response.ok:
        return response.result
    if as_json:
        body: dict[str, Any] = {"ok": False, "error": response.error, "code": response.code}
        if response.details:
            body["details"] = list(response.details)
        click.echo(dumps(body))
    else:
        for detail in response.details:
            click.echo(printable(detail), err=True)
    fail(response.error, EXIT_REFUSED)


def _exchange(path: Path, request: bytes) -> Any:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, NotADirectoryError):
            fail(f"the switch is not running (no control socket at {path})", EXIT_NOT_RUNNING)
        except ConnectionRefusedError:
            fail(f"the switch is not running (nothing answers at {path}: a stale socket)",
                 EXIT_NOT_RUNNING)
        except PermissionError:
            fail(f"permission denied on the control socket {path} (run as the switch's user, "
                 "or see [paths] control)", EXIT_NO_ACCESS)
        except OSError as exc:
            fail(f"cannot connect to the control socket {path}: {exc.strerror or exc}",
                 EXIT_NOT_RUNNING)
        try:
            sock.sendall(request)
            line = _read_line(sock)
        except TimeoutError:
            fail(f"the switch did not answer in {TIMEOUT:g} s on {path}", EXIT_NO_ANSWER)
        except OSError as exc:
            fail(f"the control connection to {path} failed: {exc.strerror or exc}",
                 EXIT_NO_ANSWER)
    finally:
        sock.close()
    if not line:
        fail(f"the switch closed the control connection without answering ({path})",
             EXIT_NO_ANSWER)
    try:
        return decode_response(line)
    except ProtocolError as exc:
        fail(f"bad answer on {path}: {exc}", EXIT_NO_ANSWER)


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b""  # closed before a whole line
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            return b"".join(chunks)
        if size > MAX_RESPONSE:
            raise OSError(f"answer longer than {MAX_RESPONSE} bytes")


# -- output ------------------------------------------------------------------------------

def cell(value: object, style: str = "") -> Text:
    """A table cell: escaped, never read as rich markup (Text, not a markup string)."""
    return Text(printable("" if value is None else str(value)), style=style)


def lines(*parts: object, style: str = "") -> Text:
    """A cell of several lines, each part escaped on its own (so only we break lines)."""
    return Text("\n".join(printable(str(p)) for p in parts if p not in (None, "")), style=style)


def dumps(value: Any) -> str:
    """JSON for stdout (`--json`): as safe in a terminal as the tables (`json_printable`)."""
    return json_printable(value)


def duration(seconds: float | int | None) -> str:
    """12 s, 3:07, 1:02:03."""
    if seconds is None:
        return ""
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}:{m:02d}:{sec:02d}"
    return f"{m}:{sec:02d}" if m else f"{sec} s"
