"""The HTTP webhook transport of protocol v1: POST the event, the response body is the actions (I/O).

Theory of operation: a route with ``url = "https://crm.example.com/pbx"`` sends each event as
one POST to that URL.  The body is the JSON a worker reads (the per-event stdin JSON plus
``"env"``); headers name the event and call and, when the route has a ``secret``, sign the body
GitHub-style: ``X-Pbx-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.  A 2xx response's
body is parsed by the same parse_actions as a script's stdout (text or JSON).  Everything else
is a failed RunResult, so the engine runs the route's fallback exactly as for a failed process:
a non-2xx status (``HTTP 503``; redirects are not followed), a refused or failed connection,
the deadline (one deadline over connect, request and the whole response), a malformed or
oversize response, invalid actions.  The response body of a failure goes to the trace as stderr.

The HTTP/1.1 client is deliberately minimal (RFC 9112): one connection per event with
``Connection: close``, a Content-Length request body; a response framed by Content-Length,
chunked transfer coding (§7.1) or the end of the connection (§6.3), bounded to MAX_BODY.
https uses the default SSL context (certificates and host names are verified).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import socket
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pbxcore.script.actions import Action, ActionError, parse_actions
from pbxcore.script.events import Event
from pbxcore.script.runner import MAX_OUTPUT, RunResult
from pbxcore.script.worker import worker_line

MAX_BODY = MAX_OUTPUT
"""Largest response body accepted, bytes (as for a script's stdout)."""
MAX_HEADERS = 16384
"""Largest response head (status line and headers), bytes."""
USER_AGENT = "pbxcore-webhook/1"
_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?\r?\n")
_UNSAFE = re.compile(r"[^\x21-\x7e]")


class BadResponse(Exception):
    """The server's answer is not HTTP/1.x we can frame."""


def signature(secret: str | bytes, body: bytes) -> str:
    """The X-Pbx-Signature value for `body`: ``sha256=`` + hex HMAC-SHA256 keyed by the secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class Webhook:
    """POSTs each event to `url` and parses the response body as actions (ScriptTransport)."""

    name = "webhook"

    def __init__(self, url: str, *, secret: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url must be http:// or https://, not {url!r}")
        self.url = url
        self.secret = secret
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        default = self.port == (443 if parts.scheme == "https" else 80)
        self.host_header = netloc if default else f"{netloc}:{self.port}"
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None

    async def run(self, script: Path, event: Event, *, env: Mapping[str, str],
                  timeout: float) -> RunResult:
        started, t0 = time.time(), time.monotonic()
        body = worker_line(event, env)
        error: str | None = None
        status, reply = 0, b""
        try:
            async with asyncio.timeout(timeout):
                status, reply = await self._post(body, self._headers(event, body))
        except TimeoutError:
            error = f"timeout after {float(timeout)} s"
        except ConnectionRefusedError:
            error = "connection refused"
        except socket.gaierror as exc:
            error = f"cannot resolve {self.host}: {exc.strerror}"
        except ssl.SSLError as exc:
            error = f"TLS error: {exc.reason or exc}"
        except OSError as exc:
            error = f"connection failed: {exc.strerror or exc}"
        except BadResponse as exc:
            error = f"bad HTTP response: {exc}"
        actions: list[Action] = []
        if error is None and not 200 <= status < 300:
            error = f"HTTP {status}"
        elif error is None and len(reply) > MAX_BODY:
            error = f"output larger than {MAX_BODY} bytes"
        elif error is None:
            try:
                actions = parse_actions(reply)
            except ActionError as exc:
                error = str(exc)
        ok = error is None
        return RunResult(
            ok=ok, actions=actions, error=error, exit_status=None,
            stdout=reply[:MAX_BODY] if ok or status in range(200, 300) else b"",
            stderr=b"" if ok or 200 <= status < 300 else reply[:MAX_BODY],
            started=started, duration=time.monotonic() - t0, pid=None)

    async def close(self) -> None:
        pass  # no connection outlives its event

    def _headers(self, event: Event, body: bytes) -> list[tuple[str, str]]:
        headers = [
            ("Host", self.host_header), ("User-Agent", USER_AGENT),
            ("Content-Type", "application/json"), ("Accept", "application/json, text/plain"),
            ("Content-Length", str(len(body))), ("Connection", "close"),
            ("X-Pbx-Protocol", "1"), ("X-Pbx-Event", _token(event.name)),
            ("X-Pbx-Call-Id", _token(event.call_id)), ("X-Pbx-Timestamp", str(int(time.time()))),
        ]
        if self.secret is not None:
            headers.append(("X-Pbx-Signature", signature(self.secret, body)))
        return headers

    async def _post(self, body: bytes, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self._ssl, limit=MAX_HEADERS,
            server_hostname=self.host if self._ssl else None)
        try:
            head = f"POST {self.target} HTTP/1.1\r\n" + "".join(
                f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
            writer.write(head.encode("ascii") + body)
            await writer.drain()
            reply = await read_response(reader)
        except BaseException:
            writer.transport.abort()  # deadline or a broken peer: drop it, unread data and all
            raise
        writer.close()  # Connection: close; the response is complete
        return reply


async def read_response(reader: asyncio.StreamReader,
                        limit: int = MAX_BODY) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.x response; a body longer than `limit` is cut at limit+1
    bytes (so the caller can tell).  Raises BadResponse for anything it cannot frame."""
    try:
        while True:
            status, fields = await _read_head(reader)
            if not 100 <= status < 200:  # 1xx are interim (RFC 9110 §15.2): the final follows
                break
        if status in (204, 304):
            return status, b""
        encoding = fields.get("transfer-encoding", "").lower()
        if encoding:
            if encoding.split(",")[-1].strip() != "chunked":
                raise BadResponse(f"unsupported Transfer-Encoding {encoding!r}")
            return status, await _read_chunked(reader, limit)
        if "content-length" in fields:
            length = fields["content-length"]
            if not length.isdigit():
                raise BadResponse(f"bad Content-Length {length!r}")
            n = int(length)
            return status, await reader.readexactly(min(n, limit + 1))
        return status, await _read_to_close(reader, limit)
    except asyncio.IncompleteReadError as exc:
        raise BadResponse("connection closed before the end of the response") from exc
    except (ValueError, asyncio.LimitOverrunError) as exc:  # a line longer than the limit
        raise BadResponse("response head too large") from exc


async def _read_to_close(reader: asyncio.StreamReader, limit: int) -> bytes:
    """A body delimited by the end of the connection (RFC 9112 §6.3, last rule)."""
    body = bytearray()
    while len(body) <= limit and (chunk := await reader.read(limit + 1 - len(body))):
        body += chunk
    return bytes(body)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await reader.readline()
    m = _STATUS.fullmatch(line)
    if not line:
        raise BadResponse("connection closed without a response")
    if not m:
        raise BadResponse(f"bad status line {line[:80]!r}")
    fields: dict[str, str] = {}
    size = len(line)
    while True:
        line = await reader.readline()
        size += len(line)
        if size > MAX_HEADERS:
            raise BadResponse("response head too large")
        if line in (b"\r\n", b"\n"):
            return int(m.group(1)), fields
        if not line.endswith(b"\n"):
            raise BadResponse("connection closed in the response head")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise BadResponse(f"bad header line {line[:80]!r}")
        key, value = name.lower(), value.strip()
        if key in fields and key in ("content-length", "transfer-encoding"):
            if key == "content-length" and fields[key] != value:
                raise BadResponse("conflicting Content-Length headers")
            value = f"{fields[key]}, {value}" if key == "transfer-encoding" else value
        fields[key] = value


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readline()
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse(f"bad chunk size {size_line[:40]!r}") from None
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields: not used
            return bytes(body)
        if len(body) + size > limit:
            body += await reader.readexactly(limit + 1 - len(body))
            return bytes(body)
        body += await reader.readexactly(size)
        if (await reader.readline()) not in (b"\r\n", b"\n"):
            raise BadResponse("chunk not followed by CRLF")


def _token(value: str) -> str:
    """A header-safe rendering of a switch-made id (no spaces, controls or non-ASCII)."""
    return _UNSAFE.sub("_", value)[:256]
