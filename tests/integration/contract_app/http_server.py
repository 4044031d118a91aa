"""The webhook entry point: a small asyncio HTTP/1.1 server that runs ivr.handle per POST.

Used in-process by the contract tests (start_webhook_server) and as a program by the end-to-end
test and the bench (`python http_server.py [SECRET]` prints its port, serves until killed).
It checks X-Pbx-Signature the way docs/protocol.md tells webhook authors to, and answers 401
when it does not verify.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ivr import Crash, Slow, handle  # noqa: E402

Reply = tuple[int, bytes, str]  # status, body, content type


@dataclass
class Seen:
    """One request as the server received it."""

    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookServer:
    server: asyncio.Server
    port: int
    secret: str | None
    seen: list[Seen] = field(default_factory=list)
    respond: Callable[[dict[str, Any]], Awaitable[Reply]] | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pbx/events?v=1"

    async def close(self) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a webhook author writes (docs/protocol.md): constant-time compare of the HMAC."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def ivr_reply(event: dict[str, Any]) -> Reply:
    try:
        actions = handle(event)
    except Crash as exc:
        return 500, f"Traceback: {exc}\n".encode(), "text/plain"
    except Slow:
        await asyncio.sleep(30)
        return 200, b"[]", "application/json"
    return 200, json.dumps(actions).encode(), "application/json"


async def start_webhook_server(secret: str | None = None, port: int = 0) -> WebhookServer:
    holder: list[WebhookServer] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        holder[0].tasks.add(task)
        try:
            request = await reader.readline()
            method, target, _ = request.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            srv = holder[0]
            srv.seen.append(Seen(target, headers, body))
            if method != "POST":
                status, reply, ctype = 405, b"POST only\n", "text/plain"
            elif srv.secret is not None and not verify(
                    srv.secret, body, headers.get("x-pbx-signature", "")):
                status, reply, ctype = 401, b"bad signature\n", "text/plain"
            else:
                respond = srv.respond or ivr_reply
                status, reply, ctype = await respond(json.loads(body))
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
                         + reply)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            holder[0].tasks.discard(task)

    server = await asyncio.start_server(client, "127.0.0.1", port)
    ws = WebhookServer(server, server.sockets[0].getsockname()[1], secret)
    holder.append(ws)
    return ws


async def _main() -> None:
    ws = await start_webhook_server(sys.argv[1] if len(sys.argv) > 1 else None)
    print(ws.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())
