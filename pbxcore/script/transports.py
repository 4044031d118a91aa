"""How an event reaches a script: the seam between the call engine and the script transports.

Protocol v1 has one contract and several ways to carry it (docs/protocol.md): a process per event
(the default, the CGI model), a persistent worker speaking JSON lines, an HTTP webhook.  The
engine asks `Transports.for_route(route)` and calls `run(script, event, env=, timeout=)`; every
transport returns the same `RunResult`, so traces, fallbacks and tests are the same for all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from pbxcore.script.events import Event
from pbxcore.script.runner import RunResult, run_script
from pbxcore.script.webhook import Webhook
from pbxcore.script.worker import WorkerPool


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
    """The transport of each route; per-event processes unless the route names another.

    Worker pools and webhook clients are keyed by what the route says (transport, worker, pool
    size, url, secret, env), not by the route's position, so a hot-reloaded config whose routes
    moved still finds the right pool, and a route that is new since start-up gets one on its
    first call.  `update()` starts the pools of a new config and closes the ones it dropped.
    """

    def __init__(self) -> None:
        self.process = ProcessTransport()
        self._by_route: dict[int, ScriptTransport] = {}
        self._by_key: dict[tuple[Any, ...], ScriptTransport] = {}

    def add(self, route_index: int, transport: ScriptTransport) -> None:
        """Use `transport` for the route at this position, whatever it says (tests, tools)."""
        self._by_route[route_index] = transport

    def for_route(self, route: Any) -> ScriptTransport:
        if route.index in self._by_route:
            return self._by_route[route.index]
        key = route_key(route)
        if key is None:
            return self.process
        transport = self._by_key.get(key)
        if transport is None:
            transport = self._by_key[key] = transport_for(route) or self.process
        return transport

    async def start(self) -> None:
        """Start what has a lifetime (worker pools spawn their processes now)."""
        for transport in self._all():
            start = getattr(transport, "start", None)
            if start is not None:
                await start()

    async def update(self, routes: Iterable[Any]) -> None:
        """After a config reload: build and start the transports of `routes`, close the others
        (an event still running on a closed pool fails and gets its route's fallback)."""
        keep = {key: route for route in routes if (key := route_key(route)) is not None}
        for key in list(self._by_key):
            if key not in keep:
                await self._by_key.pop(key).close()
        for route in keep.values():
            self.for_route(route)
        await self.start()

    async def close(self) -> None:
        for transport in self._all():
            await transport.close()

    def _all(self) -> list[ScriptTransport]:
        return list(self._by_route.values()) + list(self._by_key.values())


def route_key(route: Any) -> tuple[Any, ...] | None:
    """What identifies a route's transport; None for a process per event (shared by all)."""
    kind = getattr(route, "transport", "process")
    if kind == "process":
        return None
    return (kind, str(route.worker), route.workers, route.url, route.secret,
            tuple(sorted(route.env.items())))


def transport_for(route: Any) -> ScriptTransport | None:
    """A new transport for what a config Route names, or None for a process per event."""
    kind = getattr(route, "transport", "process")
    if kind == "worker":
        return WorkerPool(route.worker, route.workers, env=route.env)
    if kind == "webhook":
        return Webhook(route.url, secret=route.secret)
    if kind != "process":
        raise ValueError(f"unknown transport {kind!r}")  # config.py let it through: our bug
    return None


def build_transports(routes: Iterable[Any]) -> Transports:
    """One Transports for the config's routes: a worker pool or a webhook client per distinct
    route handler; nothing is started (Transports.start() or the first event does that)."""
    transports = Transports()
    for route in routes:
        transports.for_route(route)
    return transports
