"""One fixture, three transports: replay through a process per event, a worker pool and a
webhook (the switch's own classes, real processes and loopback HTTP) gives the same result."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pbxcore.testing.replay import replay_path
from pbxcore.testing.report import failure_text
from tests.integration.contract_app.http_server import start_webhook_server

APP = Path(__file__).parent / "contract_app"
STEPS: list[dict[str, Any]] = [
    {"event": "incoming", "expect": [
        "answer", "set env_caller=1001 env_event=incoming tier_seen=gold",
        "gather max=1 timeout=3 prompt=menu"]},
    {"event": "gather", "result": "ok", "digits": "1",
     "expect": ["say digits 1", "log history 1", "hangup"]},
    {"event": "hangup", "result": "caller", "expect": ["log over caller"]},
]


def write(tmp_path: Path, name: str, **top: Any) -> Path:
    path = tmp_path / name
    obj = {"pbxcore_fixture": 1, "script": os.path.relpath(APP / "cgi.py", tmp_path),
           "worker": os.path.relpath(APP / "worker.py", tmp_path),
           "call": {"caller": "1001", "called": "100", "vars": {"tier": "gold"}},
           "steps": STEPS, **top}
    path.write_text(json.dumps(obj))
    return path


async def test_process_and_worker(tmp_path: Path) -> None:
    path = write(tmp_path, "f.json")
    for transport in (None, "process", "worker"):
        result = await replay_path(path, transport_name=transport)
        assert result.passed, f"{transport}: {failure_text(result)}"
        assert result.transport == (transport or "process")
    worker = write(tmp_path, "w.json", transport="worker")
    result = await replay_path(worker)
    assert result.passed and result.transport == "worker", failure_text(result)


async def test_worker_failure_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "f.json", transport="worker", timeout=1,
                 call={"caller": "bad", "called": "100"})
    result = await replay_path(path)
    assert not result.passed
    assert result.steps[0].message == ("script error: action 1: unknown action 'plya' "
                                       "(did you mean 'play'?)")


async def test_webhook(tmp_path: Path) -> None:
    server = await start_webhook_server(None)
    try:
        path = write(tmp_path, "h.json", transport="webhook", url=server.url)
        result = await replay_path(path)
        assert result.passed and result.transport == "webhook", failure_text(result)
        wrong = write(tmp_path, "x.json", transport="webhook", url=server.url,
                      steps=[{"event": "incoming", "expect": ["answer"]}])
        failed = await replay_path(wrong)
        assert not failed.passed and "+ gather max=1 timeout=3 prompt=menu" in failed.steps[0].diff
    finally:
        await server.close()
