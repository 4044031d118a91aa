"""The transport registry, the worker line, the webhook signature and HTTP response framing
(fed from memory, one byte at a time: no sockets here)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from pbxcore.config import load_config
from pbxcore.script.events import Event, event_dict
from pbxcore.script.runner import RunResult
from pbxcore.script.transports import Transports, build_transports, route_key
from pbxcore.script.webhook import BadResponse, Webhook, read_response, signature
from pbxcore.script.worker import WorkerPool, worker_line

FIXTURES = Path(__file__).parents[1] / "config" / "fixtures"


# --- registry --------------------------------------------------------------------------------

@pytest.fixture
def config_site(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "site")
    site = tmp_path / "site"
    (site / "pbx.toml").write_text("""
[[routes]]
match = "^1$"
script = "scripts/ivr.py"

[[routes]]
match = "^2$"
worker = "scripts/ivr.py"
workers = 3

[[routes]]
match = "^3$"
url = "https://crm.example.com:8443/pbx?x=1"
secret = "k"

[[routes]]
match = "^4$"
worker = "scripts/ivr.py"
workers = 3
""")
    return site


async def test_build_transports_from_config_routes(config_site: Path) -> None:
    cfg = load_config(config_site / "pbx.toml")
    transports = build_transports(cfg.routes)
    process, worker, hook, same_worker = (transports.for_route(r) for r in cfg.routes)
    assert process is transports.process and process.name == "process"
    assert isinstance(worker, WorkerPool) and worker.name == "worker"
    assert worker.path == config_site / "scripts" / "ivr.py" and len(worker.pids) == 3
    assert same_worker is worker  # same handler, same pool, whatever the route's position
    assert isinstance(hook, Webhook) and hook.name == "webhook"
    assert (hook.host, hook.port, hook.target, hook.secret) == (
        "crm.example.com", 8443, "/pbx?x=1", "k")
    assert hook.host_header == "crm.example.com:8443"
    assert worker.pids == [None, None, None]  # nothing started by building
    await transports.close()


class FakeTransport:
    name = "fake"

    def __init__(self) -> None:
        self.started = self.closed = 0

    async def run(self, script: Path, event: Event, *, env: Any, timeout: float) -> RunResult:
        raise AssertionError("not called")

    async def start(self) -> None:
        self.started += 1

    async def close(self) -> None:
        self.closed += 1


async def test_add_overrides_and_update_closes_dropped_transports(config_site: Path) -> None:
    cfg = load_config(config_site / "pbx.toml")
    transports = build_transports(cfg.routes)
    fake = FakeTransport()
    transports.add(0, fake)
    assert transports.for_route(cfg.routes[0]) is fake
    await transports.start()
    assert fake.started == 1
    pool = transports.for_route(cfg.routes[1])
    assert isinstance(pool, WorkerPool)
    # A reload that keeps only the webhook: the pool is closed, the webhook is the same object.
    hook = transports.for_route(cfg.routes[2])
    await transports.update([cfg.routes[0], cfg.routes[2]])
    assert transports.for_route(cfg.routes[2]) is hook
    assert pool.pids == [None, None, None]
    assert (await pool.run(pool.path, Event("incoming", "c"), env={}, timeout=1)).error == (
        "worker pool closed")
    await transports.close()
    assert fake.closed == 1


def test_route_key_names_the_handler(config_site: Path) -> None:
    cfg = load_config(config_site / "pbx.toml")
    keys = [route_key(r) for r in cfg.routes]
    assert keys[0] is None and keys[1] == keys[3] and keys[1] != keys[2]
    assert isinstance(Transports().for_route(cfg.routes[0]).name, str)


# --- the line a worker reads, the body a webhook gets ---------------------------------------

def test_worker_line_is_the_event_json_plus_its_environment() -> None:
    ev = Event("gather", "c1", caller="1000", caller_name="A\nB", digits="12",
               vars={"tier": "gold"})
    line = worker_line(ev, {"SECRET_FOR_SCRIPT": "x"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    obj = json.loads(line)
    env = obj.pop("env")
    assert obj == event_dict(ev)
    assert env["PBX_EVENT"] == "gather" and env["PBX_DIGITS"] == "12"
    assert env["PBX_CALLER_NAME"] == "AB" and obj["caller_name"] == "A\nB"  # sanitised vs raw
    assert env["PBX_VAR_TIER"] == "gold"
    assert all(k.startswith("PBX_") for k in env)  # PATH and the route's env stay out


# --- signature -------------------------------------------------------------------------------

def test_signature_is_hmac_sha256_hex() -> None:
    # RFC 4231 test case 2.
    assert signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert signature(b"Jefe", b"") != signature(b"Jefe", b" ")


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ValueError):
        Webhook("ftp://x/")
    assert Webhook("http://[::1]/").host_header == "[::1]"
    assert Webhook("http://h").target == "/"


# --- HTTP response framing -------------------------------------------------------------------

async def parse(raw: bytes, limit: int = 65536) -> tuple[int, bytes]:
    """Feed `raw` one byte at a time while read_response runs."""
    reader = asyncio.StreamReader(limit=16384)

    async def feed() -> None:
        for i in range(len(raw)):
            reader.feed_data(raw[i:i + 1])
            await asyncio.sleep(0)
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    try:
        return await read_response(reader, limit)
    finally:
        await feeder


@pytest.mark.parametrize("raw,expected", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nanswer", (200, b"answer")),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nanswerEXTRA", (200, b"answer")),
    (b"HTTP/1.0 200\r\n\r\nanswer\nhangup\n", (200, b"answer\nhangup\n")),
    (b"HTTP/1.1 200 OK\nContent-Length: 2\n\n[]", (200, b"[]")),  # bare LF tolerated
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"6;ext=1\r\nanswer\r\n1\r\n\n\r\n0\r\nX-Trailer: 1\r\n\r\n", (200, b"answer\n")),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n[]",
     (201, b"[]")),
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", (204, b"")),
    (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown", (503, b"down")),
])
async def test_read_response_framing(raw: bytes, expected: tuple[int, bytes]) -> None:
    assert await parse(raw) == expected


async def test_read_response_bounds_the_body() -> None:
    big = b"x" * 100
    for raw in (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + big,
                b"HTTP/1.1 200 OK\r\n\r\n" + big,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + big
                + b"\r\n0\r\n\r\n"):
        status, body = await parse(raw, limit=10)
        assert status == 200 and body == b"x" * 11  # limit + 1: the caller sees it is too big


@pytest.mark.parametrize("raw,message", [
    (b"", "connection closed without a response"),
    (b"SIP/2.0 200 OK\r\n\r\n", "bad status line b'SIP/2.0 200 OK\\r\\n'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length 'x'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     "conflicting Content-Length headers"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "connection closed before the end"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size b'zz\\r\\n'"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX", "chunk not followed"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 20000 + b"\r\n\r\n", "response head too large"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1", "connection closed in the response head"),
])
async def test_read_response_errors(raw: bytes, message: str) -> None:
    with pytest.raises(BadResponse, match="^" + re.escape(message)):
        await parse(raw)
