"""The control socket server over a real Unix socket, with in-memory handlers: mode 0600,
stale sockets, refusing a second switch, the registry, limits, timeouts, several clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pbxcore.control import server as control_server
from pbxcore.control.protocol import MAX_REQUEST, CommandError, encode_request
from pbxcore.control.server import ControlError, ControlServer


async def echo(args: Mapping[str, Any]) -> Any:
    return {"echo": dict(args)}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ControlServer]:
    server = ControlServer(tmp_path / "var" / "pbx.sock", timeout=1.0)
    server.register("echo", echo)
    await server.start()
    yield server
    await server.stop()


async def ask(path: Path, *lines: bytes) -> list[dict[str, Any]]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        answers = []
        for line in lines:
            writer.write(line)
            await writer.drain()
            answers.append(json.loads(await asyncio.wait_for(reader.readline(), 5)))
        return answers
    finally:
        writer.close()


async def test_socket_is_private_and_removed_at_stop(served: ControlServer) -> None:
    mode = served.path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert await ask(served.path, encode_request("echo", {"a": 1})) == [
        {"ok": True, "result": {"echo": {"a": 1}}}]
    await served.stop()
    assert not served.path.exists()


async def test_socket_mode_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        server = ControlServer(tmp_path / "pbx.sock")
        await server.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
        assert os.umask(old) == old  # restored
    finally:
        await server.stop()


async def test_several_requests_per_connection_and_errors(served: ControlServer) -> None:
    answers = await ask(served.path, encode_request("echo"), b"not json\n",
                        encode_request("nope"), b'{"cmd": "echo", "args": 5}\n')
    assert answers[0] == {"ok": True, "result": {"echo": {}}}
    assert answers[1]["code"] == "bad_request"
    assert answers[2]["code"] == "unknown_command" and "echo" in answers[2]["error"]
    assert answers[3]["code"] == "bad_request"


async def test_handler_errors_timeouts_and_bugs(served: ControlServer) -> None:
    async def refuse(args: Mapping[str, Any]) -> Any:
        raise CommandError("not_found", "no such call", ["detail one"])

    async def slow(args: Mapping[str, Any]) -> Any:
        await asyncio.sleep(30)

    async def buggy(args: Mapping[str, Any]) -> Any:
        raise KeyError("oops")

    for name, handler in (("refuse", refuse), ("slow", slow), ("buggy", buggy)):
        served.register(name, handler)
    refused, timed_out, bug = await ask(served.path, encode_request("refuse"),
                                        encode_request("slow"), encode_request("buggy"))
    assert refused == {"ok": False, "error": "no such call", "code": "not_found",
                       "details": ["detail one"]}
    assert timed_out["code"] == "timeout"
    assert bug["code"] == "internal" and "KeyError" in bug["error"]


async def test_reserved_commands_say_why_until_registered(served: ControlServer) -> None:
    served.reserve("queues", "no queues configured")
    [answer] = await ask(served.path, encode_request("queues"))
    assert answer == {"ok": False, "error": "no queues configured", "code": "not_configured"}
    assert not served.handles("queues")
    served.register("queues", echo)  # the ACD service arrives: no replace needed
    [answer] = await ask(served.path, encode_request("queues"))
    assert answer["ok"] is True
    with pytest.raises(ValueError, match="already registered"):
        served.register("queues", echo)
    served.register("queues", echo, replace=True)


async def test_a_slow_client_does_not_hold_up_another(served: ControlServer) -> None:
    gate = asyncio.Event()

    async def wait(args: Mapping[str, Any]) -> Any:
        await gate.wait()
        return "released"

    async def release(args: Mapping[str, Any]) -> Any:
        gate.set()
        return "done"

    served.register("wait", wait)
    served.register("release", release)
    first = asyncio.ensure_future(ask(served.path, encode_request("wait")))
    await asyncio.sleep(0)
    second = await ask(served.path, encode_request("release"))
    assert second[0]["result"] == "done"
    assert (await first)[0]["result"] == "released"


async def test_an_oversized_request_is_answered_and_cut_off(served: ControlServer) -> None:
    reader, writer = await asyncio.open_unix_connection(str(served.path))
    writer.write(b"x" * (MAX_REQUEST + 10))
    await writer.drain()
    answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert answer["code"] == "too_large"
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
    writer.close()


async def test_idle_connections_are_closed(served: ControlServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_server, "IDLE", 0.2)
    reader, writer = await asyncio.open_unix_connection(str(served.path))
    writer.write(b'{"cmd": "ec')  # half a request, then nothing
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_a_running_switch_is_not_replaced(served: ControlServer) -> None:
    second = ControlServer(served.path)
    with pytest.raises(ControlError, match="already running"):
        await second.start()
    assert (await ask(served.path, encode_request("echo")))[0]["ok"] is True


async def test_a_stale_socket_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "pbx.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # bound, never listening: what a killed switch leaves behind
    dead.close()
    server = ControlServer(path)
    server.register("echo", echo)
    await server.start()
    try:
        assert (await ask(path, encode_request("echo")))[0]["ok"] is True
    finally:
        await server.stop()


async def test_refuses_to_replace_a_file_and_a_too_long_path(tmp_path: Path) -> None:
    path = tmp_path / "pbx.sock"
    path.write_text("my notes")
    with pytest.raises(ControlError, match="not a socket"):
        await ControlServer(path).start()
    assert path.read_text() == "my notes"
    with pytest.raises(ControlError, match="longer than 107 bytes"):
        await ControlServer(tmp_path / ("d" * 120) / "pbx.sock").start()


async def test_stop_leaves_a_socket_that_is_not_ours(served: ControlServer) -> None:
    # Someone removed ours and a new switch bound the path: our stop must not delete theirs.
    served.path.unlink()
    newer = ControlServer(served.path)
    await newer.start()
    try:
        await served.stop()
        assert served.path.exists()
    finally:
        await newer.stop()
    assert not served.path.exists()
