"""Events per second and latency of the three script transports, same logic, one run.

    .venv/bin/python bench/bench_transports.py [SECONDS_PER_PHASE]

The logic is examples/workers/crm_worker.py's `handle` (a CRM-style lookup in an SQLite table of
10,000 customers, a contact row written per gather/hangup), run:
  process   as a per-event script: python starts, opens the database, answers one event, exits
  worker    as a pool of 2 crm_worker.py processes (JSON lines)
  webhook   behind a small asyncio HTTP server in its own process (the same handle per POST,
            signature checked), one connection per event
Each transport gets two phases, each bounded by SECONDS_PER_PHASE (default 3 s) of events:
  latency     one event at a time: p50 / p99 per event
  throughput  8 calls at a time (incoming, gather, hangup each): events per second
and the figures are printed with the ratio to the per-event process.  Nothing asserts an
absolute number: the ratios are what carries from one machine to another.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pbxcore.script.events import Event, HistoryEntry  # noqa: E402
from pbxcore.script.transports import ProcessTransport, ScriptTransport  # noqa: E402
from pbxcore.script.webhook import Webhook  # noqa: E402
from pbxcore.script.worker import WorkerPool  # noqa: E402

CRM = ROOT / "examples" / "workers"
SECRET = "bench-secret"
CUSTOMERS = 10_000
CONCURRENCY = 8

PER_EVENT = f"""#!{sys.executable}
import json, os, sys
sys.path.insert(0, {str(CRM)!r})
from crm_worker import handle, open_crm
event = json.loads(sys.stdin.readline())
print(json.dumps(handle(open_crm(os.environ["CRM_DB"]), event)))
"""

SERVER = f"""#!{sys.executable}
import asyncio, hashlib, hmac, json, os, sys
sys.path.insert(0, {str(CRM)!r})
from crm_worker import handle, open_crm
db = open_crm(os.environ["CRM_DB"])
key = {SECRET!r}.encode()

async def client(reader, writer):
    try:
        await reader.readline()
        headers = {{}}
        while (line := await reader.readline()) not in (b"\\r\\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers["content-length"]))
        good = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(good, headers.get("x-pbx-signature", "")):
            status, reply = 200, json.dumps(handle(db, json.loads(body))).encode()
        else:
            status, reply = 401, b"bad signature"
        writer.write(b"HTTP/1.1 %d X\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n"
                     % (status, len(reply)) + reply)
        await writer.drain()
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(client, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def make_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (phone TEXT PRIMARY KEY, name TEXT, tier TEXT, "
               "open_tickets INTEGER)")
    db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                   ((str(10000 + i), f"Customer {i}", "gold" if i % 7 == 0 else "standard",
                     i % 3) for i in range(CUSTOMERS)))
    db.commit()
    db.close()


def call_events(n: int) -> list[Event]:
    def event(name: str, **more: Any) -> Event:
        return Event(name, f"bench-{n}", caller=str(10000 + (n * 7919) % CUSTOMERS),
                     called="200", route="^200$", **more)

    return [
        event("incoming"),
        event("gather", result="ok", digits=str(n % 10), history=(HistoryEntry("incoming"),)),
        event("hangup", result="caller", extra={"hangup_cause": "normal"},
              history=(HistoryEntry("incoming"), HistoryEntry("gather", "ok"))),
    ]


async def one(transport: ScriptTransport, script: Path, ev: Event, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    result = await transport.run(script, ev, env=env, timeout=10.0)
    if not result.ok:
        raise RuntimeError(f"{transport.name}: {result.error}: {result.stderr[-300:]!r}")
    return time.perf_counter() - t0


async def latency(transport: ScriptTransport, script: Path, env: dict[str, str],
                  seconds: float) -> list[float]:
    samples: list[float] = []
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end or len(samples) < 10:
        for ev in call_events(n):
            samples.append(await one(transport, script, ev, env))
        n += 1
    return samples


async def throughput(transport: ScriptTransport, script: Path, env: dict[str, str],
                     seconds: float) -> float:
    end = time.monotonic() + seconds
    counter = iter(range(10**9))
    done = 0

    async def caller() -> None:
        nonlocal done
        while time.monotonic() < end:
            for ev in call_events(100000 + next(counter)):
                await one(transport, script, ev, env)
                done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dir = Path(tmp)
        make_db(dir / "crm.db")
        env = {"CRM_DB": str(dir / "crm.db")}
        per_event = dir / "per_event.py"
        per_event.write_text(PER_EVENT)
        per_event.chmod(0o755)
        (dir / "server.py").write_text(SERVER)
        server = subprocess.Popen([sys.executable, str(dir / "server.py")],
                                  stdout=subprocess.PIPE, env={**os.environ, **env},
                                  start_new_session=True)
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            url = f"http://127.0.0.1:{port}/pbx"
            pool = WorkerPool(CRM / "crm_worker.py", 2, env=env)
            await pool.start()
            runs: list[tuple[str, ScriptTransport, Path]] = [
                ("process", ProcessTransport(), per_event),
                ("worker", pool, CRM / "crm_worker.py"),
                ("webhook", Webhook(url, secret=SECRET), Path(url)),
            ]
            rows = []
            for name, transport, script in runs:
                lat = await latency(transport, script, env, seconds)
                eps = await throughput(transport, script, env, seconds)
                rows.append((name, len(lat), statistics.median(lat), pct(lat, 0.99), eps))
            await pool.close()
            assert pool.restarts == 0
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(5)
            if server.stdout is not None:
                server.stdout.close()
    base_p50, base_eps = rows[0][2], rows[0][4]
    print(f"CRM lookup (SQLite, {CUSTOMERS} customers), {os.cpu_count()} CPUs, "
          f"{seconds:g} s per phase, throughput with {CONCURRENCY} calls at a time")
    print(f"{'transport':<10}{'events':>8}{'p50 ms':>10}{'p99 ms':>10}{'events/s':>11}"
          f"{'p50 vs process':>16}{'ev/s vs process':>17}")
    for name, n, p50, p99, eps in rows:
        print(f"{name:<10}{n:>8}{p50 * 1e3:>10.2f}{p99 * 1e3:>10.2f}{eps:>11.0f}"
              f"{p50 / base_p50:>15.3f}x{eps / base_eps:>16.1f}x")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))
