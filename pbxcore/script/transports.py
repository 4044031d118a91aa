"""How an event reaches a script: the seam between the call engine and the script transports.

Protocol v1 has one contract and several ways to carry it (docs/protocol.md): a process per event
(the default, the CGI model), a persistent worker speaking JSON lines, an HTTP webhook.  The
engine asks `Transports.for_route(route)` and calls `run(script, event, env=, timeout=)`; every
transport returns the same `RunResult`, so traces, fallbacks and tests are the same for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from pbxcore.script.events import Event
from pbxcore.script.runner import RunResult, run_script


class ScriptTransport(Protocol):
    """Runs one event through a script and returns its actions (or why it failed)."""

    name: str

    async def run(self, script: Path, event: Event, *, env: Mapping[str, str],
                  timeout: float) -> RunResult: ...

    async def close(self) -> None: ...


class ProcessTransport:
    """One process per event: exec the script, event on stdin, actions on stdout."""

    name = "process"

    async def run(self, script: Path, event: Event, *, env: Mapping[str, str],
                  timeout: float) -> RunResult:
        return await run_script(script, event, env=env, timeout=timeout)

    async def close(self) -> None:
        pass


class Transports:
    """The transport of each route; per-event processes unless the route names another."""

    def __init__(self) -> None:
        self.process = ProcessTransport()
        self._by_route: dict[int, ScriptTransport] = {}

    def add(self, route_index: int, transport: ScriptTransport) -> None:
        self._by_route[route_index] = transport

    def for_route(self, route: Any) -> ScriptTransport:
        return self._by_route.get(route.index, self.process)

    async def close(self) -> None:
        for transport in self._by_route.values():
            await transport.close()
