"""The control protocol: one JSON object per line each way (pure: bytes in, values out).

Request:  {"cmd": "calls", "args": {...}}\\n      (args optional, an object)
Response: {"ok": true, "result": ...}\\n
          {"ok": false, "error": "one line for a human", "code": "not_found", "details": [...]}\\n

A client may send several requests on one connection; each gets exactly one response line, in
order.  Lines are UTF-8 and at most MAX_REQUEST bytes (a request) — the server is local but not
trusting: a client that sends an endless line is answered `too_large` and disconnected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_REQUEST = 64 * 1024  # bytes in one request line, newline included
MAX_RESPONSE = 16 * 1024 * 1024  # what a client accepts (a thousand calls fit many times over)

# Error codes: stable names a client can act on (the CLI maps them to exit statuses).
BAD_REQUEST = "bad_request"  # not JSON, not an object, no cmd
TOO_LARGE = "too_large"  # request line longer than MAX_REQUEST
UNKNOWN_COMMAND = "unknown_command"
BAD_ARGS = "bad_args"  # the command's arguments are missing or of the wrong type
NOT_FOUND = "not_found"  # e.g. hangup of a call that is not live
NOT_CONFIGURED = "not_configured"  # e.g. queues when the switch has no ACD
CONFIG_INVALID = "config_invalid"  # reload refused: details are the FILE:LINE problems
TIMEOUT = "timeout"  # the command did not finish in time
INTERNAL = "internal"  # a bug in a handler (logged by the switch)
ERROR_CODES = frozenset({BAD_REQUEST, TOO_LARGE, UNKNOWN_COMMAND, BAD_ARGS, NOT_FOUND,
                         NOT_CONFIGURED, CONFIG_INVALID, TIMEOUT, INTERNAL})


class CommandError(Exception):
    """A handler's refusal, sent to the client as {"ok": false, ...}."""

    def __init__(self, code: str, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, tuple(details)


class ProtocolError(ValueError):
    """A line that is not a valid request or response."""


@dataclass(frozen=True)
class ControlRequest:
    cmd: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ControlResponse:
    ok: bool
    result: Any = None
    error: str = ""
    code: str = ""
    details: tuple[str, ...] = ()


def encode_request(cmd: str, args: Mapping[str, Any] | None = None) -> bytes:
    return _line({"cmd": cmd, "args": dict(args or {})})


def decode_request(line: bytes) -> ControlRequest:
    """Parse one request line; ProtocolError (→ bad_request) when it is not one."""
    if len(line) > MAX_REQUEST:
        raise ProtocolError(f"request longer than {MAX_REQUEST} bytes")
    data = _object(line, "request")
    cmd = data.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise ProtocolError('request needs "cmd": a command name')
    args = data.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError('"args" must be an object')
    return ControlRequest(cmd, args)


def encode_result(result: Any) -> bytes:
    return _line({"ok": True, "result": result})


def encode_error(code: str, message: str, details: Sequence[str] = ()) -> bytes:
    body: dict[str, Any] = {"ok": False, "error": message, "code": code}
    if details:
        body["details"] = list(details)
    return _line(body)


def decode_response(line: bytes) -> ControlResponse:
    data = _object(line, "response")
    ok = data.get("ok")
    if ok is True:
        return ControlResponse(True, data.get("result"))
    if ok is False:
        error, code = data.get("error"), data.get("code")
        details = data.get("details") or []
        if not isinstance(error, str) or not isinstance(code, str) or not isinstance(details, list):
            raise ProtocolError("error response needs string error and code")
        return ControlResponse(False, error=error, code=code,
                               details=tuple(str(d) for d in details))
    raise ProtocolError('response needs "ok": true or false')


def _object(line: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"{what} is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{what} must be a JSON object")
    return data


def _line(body: Mapping[str, Any]) -> bytes:
    # ensure_ascii: the wire stays 7-bit, so a line can never contain a raw newline or a
    # terminal control byte whatever a caller put in a display name.
    return json.dumps(body, ensure_ascii=True, separators=(",", ":"), default=str).encode() + b"\n"
