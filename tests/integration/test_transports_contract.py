"""One contract, three transports: the same IVR logic (contract_app/ivr.py) run as a process per
event, as a worker pool and behind a webhook must give the switch the same actions and the same
kinds of failure.  Every transport is real: processes, pipes, loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbxcore.script.events import Event, HistoryEntry
from pbxcore.script.runner import RunResult
from pbxcore.script.transports import ProcessTransport, ScriptTransport
from pbxcore.script.webhook import Webhook
from pbxcore.script.worker import WorkerPool
from tests.integration.contract_app.http_server import (
    Seen,
    WebhookServer,
    start_webhook_server,
    verify,
)

APP = Path(__file__).parent / "contract_app"
SECRET = "s3cr3t-for-tests"
ROUTE_ENV = {"CRM_DSN": "sqlite:///nowhere.db"}


@dataclass
class Under:
    """A transport under test and the script path the engine would pass it."""

    kind: str
    transport: ScriptTransport
    script: Path
    server: WebhookServer | None = None

    async def run(self, event: Event, timeout: float = 5.0) -> RunResult:
        return await self.transport.run(self.script, event, env=ROUTE_ENV, timeout=timeout)


@pytest.fixture(params=["process", "worker", "webhook"])
async def under(request: pytest.FixtureRequest) -> AsyncIterator[Under]:
    kind = request.param
    if kind == "process":
        u = Under(kind, ProcessTransport(), APP / "cgi.py")
    elif kind == "worker":
        u = Under(kind, WorkerPool(APP / "worker.py", 2, env=ROUTE_ENV), APP / "worker.py")
    else:
        server = await start_webhook_server(SECRET)
        u = Under(kind, Webhook(server.url, secret=SECRET), Path(server.url), server)
    try:
        yield u
    finally:
        await u.transport.close()
        if u.server is not None:
            await u.server.close()


def call(caller: str = "1000", call_id: str = "call-1") -> list[Event]:
    base = dict(call_id=call_id, caller=caller, caller_name="Ann", called="2000", route="^2000$",
                vars={"tier": "gold"})
    return [
        Event("incoming", **base),  # type: ignore[arg-type]
        Event("gather", result="ok", digits="1", history=(HistoryEntry("incoming"),),
              **base),  # type: ignore[arg-type]
        Event("hangup", result="caller", extra={"hangup_cause": "normal"},
              history=(HistoryEntry("incoming"), HistoryEntry("gather", "ok")),
              **base),  # type: ignore[arg-type]
    ]


EXPECTED = [
    ["answer", "set env_caller=1000 env_event=incoming tier_seen=gold",
     "gather max=1 timeout=3 prompt=menu"],
    ["say digits 1", "log 'history 1'", "hangup"],
    ["log 'over caller'"],
]


async def test_same_events_give_the_same_actions(under: Under) -> None:
    got = []
    for event in call():
        result = await under.run(event)
        assert result.ok, (result.error, result.stderr)
        got.append([a.to_text() for a in result.actions])
    assert got == EXPECTED


async def test_deadline_fails_the_event_and_the_next_one_works(under: Under) -> None:
    started = time.monotonic()
    result = await under.run(call("slow")[0], timeout=0.5)
    assert not result.ok and result.error == "timeout after 0.5 s"
    assert time.monotonic() - started < 2.0
    assert result.actions == []
    again = await under.run(call()[0], timeout=5)
    assert again.ok and [a.to_text() for a in again.actions] == EXPECTED[0]


async def test_crash_fails_with_stderr_then_recovers(under: Under) -> None:
    result = await under.run(call("crash")[0])
    assert not result.ok
    expected_error = {"process": "exit status 3",
                      "worker": "worker closed its output (exit status 3)",
                      "webhook": "HTTP 500"}[under.kind]
    assert result.error == expected_error
    assert b"Traceback: crash requested by crash on incoming" in result.stderr
    again = await under.run(call(call_id="call-2")[0])
    assert again.ok and [a.to_text() for a in again.actions] == EXPECTED[0]


async def test_invalid_actions_fail_with_the_validator_message(under: Under) -> None:
    result = await under.run(call("bad")[0])
    assert not result.ok
    assert result.error == "action 1: unknown action 'plya' (did you mean 'play'?)"
    assert (await under.run(call()[0])).ok  # a wrong answer does not break the transport


async def test_oversize_output_fails(under: Under) -> None:
    result = await under.run(call("huge")[0])
    assert not result.ok and result.error == "output larger than 65536 bytes"
    assert (await under.run(call()[0])).ok


# --- worker specifics ------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


async def test_worker_events_of_a_call_stay_on_one_worker_in_order() -> None:
    pool = WorkerPool(APP / "worker.py", 2, env={})
    try:
        await pool.start()
        assert all(pool.pids)

        async def one_call(n: int) -> list[RunResult]:
            return [await pool.run(APP / "worker.py", ev, env={}, timeout=5)
                    for ev in call("lag" if n % 2 else "1000", call_id=f"call-{n}")]

        calls = await asyncio.gather(*(one_call(n) for n in range(6)))
        for results in calls:
            assert all(r.ok for r in results), [r.error for r in results]
            assert len({r.pid for r in results}) == 1  # sticky
            assert [r.actions[-1].verb for r in results] == ["gather", "hangup", "log"]
        assert {r.pid for results in calls for r in results} == set(pool.pids)  # both used
        assert pool.restarts == 0
    finally:
        await pool.close()


async def test_worker_cancelled_event_does_not_shift_the_answers() -> None:
    pool = WorkerPool(APP / "worker.py", 1, env={})
    try:
        lagging = asyncio.create_task(pool.run(APP / "worker.py", call("lag")[0], env={},
                                               timeout=5))
        await asyncio.sleep(0.1)
        lagging.cancel()  # the call went away while its worker was busy with it
        with pytest.raises(asyncio.CancelledError):
            await lagging
        result = await pool.run(APP / "worker.py", call()[2], env={}, timeout=5)
        assert result.ok and [a.to_text() for a in result.actions] == EXPECTED[2]
        assert pool.restarts == 0
    finally:
        await pool.close()


async def test_worker_killed_while_idle_is_replaced_without_failing_an_event() -> None:
    pool = WorkerPool(APP / "worker.py", 1, env={})
    try:
        await pool.start()
        (pid,) = pool.pids
        assert pid is not None
        os.kill(pid, 9)
        for _ in range(200):  # until the pool has noticed (reaped it)
            if pool.pids == [None]:
                break
            await asyncio.sleep(0.01)
        assert pool.pids == [None]
        result = await pool.run(APP / "worker.py", call()[0], env={}, timeout=5)
        assert result.ok and result.pid != pid
    finally:
        await pool.close()


async def test_worker_close_stops_and_reaps_every_process(tmp_path: Path) -> None:
    # A worker that ignores SIGTERM and leaves a child behind: close() still ends them all.
    stubborn = tmp_path / "stubborn.sh"
    stubborn.write_text("#!/bin/sh\ntrap '' TERM\nsleep 60 &\n"
                        "while read line; do echo '[]'; done\n")
    stubborn.chmod(0o755)
    pool = WorkerPool(stubborn, 3, env={})
    await pool.start()
    assert (await pool.run(stubborn, call()[0], env={}, timeout=5)).ok
    pids = [p for p in pool.pids if p is not None]
    assert len(pids) == 3
    started = time.monotonic()
    await pool.close()
    assert 0.9 < time.monotonic() - started < 4  # TERM ignored: KILL after the 1 s grace
    assert not any(_alive(p) for p in pids)
    groups = [line for p in pids for line in _group_members(p)]
    assert groups == []  # the background sleeps went with their groups
    closed = await pool.run(stubborn, call()[0], env={}, timeout=5)
    assert not closed.ok and closed.error == "worker pool closed"


def _group_members(pgid: int) -> list[str]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(entry)
    return out


async def test_worker_that_cannot_start_fails_each_event(tmp_path: Path) -> None:
    pool = WorkerPool(tmp_path / "missing.py", 2, env={})
    try:
        result = await pool.run(tmp_path / "missing.py", call()[0], env={}, timeout=2)
        assert not result.ok and result.error == f"script not found: {tmp_path / 'missing.py'}"
    finally:
        await pool.close()


async def test_worker_environment_is_minimal_and_names_the_transport(tmp_path: Path) -> None:
    dump = tmp_path / "env.py"
    dump.write_text("#!/usr/bin/env python3\nimport json, os, sys\nfor line in sys.stdin:\n"
                    "    ev = json.loads(line)\n"
                    "    print(json.dumps([{'action': 'set', 'vars': {"
                    "'n': str(len(os.environ)), 'keys': ','.join(sorted(os.environ)), "
                    "'ev': ev['env']['PBX_EVENT'], 'raw': ev['caller_name']}}]), flush=True)\n")
    dump.chmod(0o755)
    os.environ["PBX_LEAK_TEST"] = "x"
    pool = WorkerPool(dump, 1, env={"CRM": "1"})
    try:
        result = await pool.run(dump, Event("incoming", "c", caller_name="A\nB"), env={"CRM": "1"},
                                timeout=5)
        assert result.ok, result.error
        values = result.actions[0].vars  # type: ignore[attr-defined]
        assert values["keys"] == "CRM,HOME,LANG,PATH,PBX_PROTOCOL,PBX_RUN_ID,PBX_TRANSPORT"
        assert values["ev"] == "incoming" and values["raw"] == "A\nB"
    finally:
        del os.environ["PBX_LEAK_TEST"]
        await pool.close()


# --- webhook specifics -----------------------------------------------------------------------

async def test_webhook_request_is_signed_and_names_the_event() -> None:
    server = await start_webhook_server(SECRET)
    try:
        hook = Webhook(server.url, secret=SECRET)
        assert (await hook.run(Path(server.url), call()[0], env=ROUTE_ENV, timeout=5)).ok
        (seen,) = server.seen
        assert seen.target == "/pbx/events?v=1"
        h = seen.headers
        assert h["content-type"] == "application/json"
        assert h["x-pbx-event"] == "incoming" and h["x-pbx-call-id"] == "call-1"
        assert abs(int(h["x-pbx-timestamp"]) - time.time()) < 5
        assert h["host"] == f"127.0.0.1:{server.port}"
        assert verify(SECRET, seen.body, h["x-pbx-signature"])
        assert not verify("another secret", seen.body, h["x-pbx-signature"])
        body = json.loads(seen.body)
        assert body["event"] == "incoming" and body["env"]["PBX_CALLER"] == "1000"
        assert body["env"]["PBX_VAR_TIER"] == "gold" and "CRM_DSN" not in body["env"]
    finally:
        await server.close()


async def test_webhook_wrong_secret_is_refused_and_fails() -> None:
    server = await start_webhook_server(SECRET)
    try:
        for secret in ("wrong", None):
            hook = Webhook(server.url, secret=secret)
            result = await hook.run(Path(server.url), call()[0], env={}, timeout=5)
            assert not result.ok and result.error == "HTTP 401"
            assert result.stderr == b"bad signature\n"
    finally:
        await server.close()


@pytest.mark.parametrize("reply,error", [
    ((503, b"down for maintenance", "text/plain"), "HTTP 503"),
    ((302, b"", "text/plain"), "HTTP 302"),
    ((200, b"answer\nplay welcome\n", "text/plain"), None),
    ((200, b'{"actions": [{"action": "answer"}]}', "application/json"), None),
    ((204, b"", "text/plain"), None),
    ((200, b"plya x", "text/plain"), "line 1: unknown action 'plya' (did you mean 'play'?)"),
])
async def test_webhook_status_and_body_forms(reply: tuple[int, bytes, str],
                                             error: str | None) -> None:
    server = await start_webhook_server()

    async def respond(event: dict[str, object]) -> tuple[int, bytes, str]:
        return reply

    server.respond = respond
    try:
        result = await Webhook(server.url).run(Path(server.url), call()[0], env={}, timeout=5)
        assert result.error == error and result.ok == (error is None)
        if error is None:
            assert [a.verb for a in result.actions] == (
                [] if reply[0] == 204 else ["answer", "play"][: len(result.actions)])
        elif reply[0] >= 300:
            assert result.stderr == reply[1]
        assert "x-pbx-signature" not in server.seen[0].headers
    finally:
        await server.close()


async def test_webhook_connection_refused() -> None:
    server = await start_webhook_server()
    url = server.url
    await server.close()
    result = await Webhook(url).run(Path(url), call()[0], env={}, timeout=2)
    assert not result.ok and result.error == "connection refused"


async def test_webhook_deadline_covers_a_server_that_never_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(100000):  # reads the request, never answers
                pass
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        result = await Webhook(f"http://127.0.0.1:{port}/").run(
            Path("x"), call()[0], env={}, timeout=0.3)
        assert not result.ok and result.error == "timeout after 0.3 s"
        assert time.monotonic() - started < 1.5
    finally:
        server.close()
        await server.wait_closed()


def test_seen_is_a_plain_record() -> None:
    assert Seen("/", {}, b"").target == "/"


async def test_example_crm_worker_answers_a_whole_call() -> None:
    crm = Path(__file__).parents[2] / "examples" / "workers" / "crm_worker.py"
    pool = WorkerPool(crm, 1, env={})
    try:
        texts = []
        for ev in call("1001"):
            result = await pool.run(crm, ev, env={}, timeout=5)
            assert result.ok, (result.error, result.stderr)
            texts.append([a.to_text() for a in result.actions])
        assert texts[0][1] == "set customer=Alice tier=gold open_tickets=1"
        assert texts[1] == ["say digits 1", "play goodbye", "hangup"]
        assert texts[2] == ["log 'crm: contact stored for 1001'"]
    finally:
        await pool.close()


async def test_worker_pool_started_by_concurrent_first_events_spawns_once() -> None:
    pool = WorkerPool(APP / "worker.py", 2, env={})
    try:
        results = await asyncio.gather(*(pool.run(APP / "worker.py", call(call_id=f"c{n}")[0],
                                                  env={}, timeout=5) for n in range(4)))
        assert all(r.ok for r in results)
        assert {r.pid for r in results} == set(pool.pids) and len(set(pool.pids)) == 2
        assert len(_children_running(APP / "worker.py")) == 2
    finally:
        await pool.close()
    assert _children_running(APP / "worker.py") == []
    with pytest.raises(ValueError):
        WorkerPool(APP / "worker.py", 0, env={})


def _children_running(path: Path) -> list[int]:
    """Our live child processes running `path` (by parent pid and command line)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and str(path).encode() in cmdline:
            out.append(int(entry))
    return out
