"""REGISTER handling (RFC 3261 §10.3): digest-authenticated bindings with expiry.

Bindings are looked up in memory, keyed by extension (the call path never waits on a database),
and every change is written through to the store (table ``registrations``, issue 13), in order,
by one chain of writes: a restarted node loads the live ones back (`load`), and nodes sharing a
PostgreSQL read each other's (`refresh`).  The store keeps UTC wall-clock expiry; memory keeps a
monotonic deadline, converted at the seam.  A fetch (REGISTER without Contact) lists them, `*`
with Expires 0 removes them all (§10.2.2).  The binding remembers the address the REGISTER came
from, because that is where a phone behind NAT can actually be reached.  Contact parameters that
are not URI parameters (RFC 4475 cparam01) stay out of the stored URI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pbxcore.sip.address import NameAddr, parse_contact_list
from pbxcore.sip.message import Request, SipSyntaxError
from pbxcore.sip.numbers import UINT32_MAX, clamped_uint
from pbxcore.sip.peer import Peer
from pbxcore.store.base import Store
from pbxcore.store.registrations import Registration

log = logging.getLogger("pbxcore.registrar")

DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
MAX_EXPIRES = 7200


@dataclass(frozen=True)
class Binding:
    """One registered contact of an extension."""

    contact: str  # the Contact URI as registered
    expires_at: float  # monotonic deadline
    source: Peer  # where the REGISTER came from (reach the phone here)
    call_id: str
    cseq: int
    user_agent: str = ""  # the REGISTER's User-Agent, as sent (escape before showing it)
    path: tuple[str, ...] = ()  # RFC 3327 Path URIs, first hop first: reach the phone via them


def _wall_now() -> datetime:
    return datetime.now(UTC)


class Registrar:
    """The location service: extension → live bindings, written through to ``store``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 store: Store | None = None, node: str = "",
                 wall: Callable[[], datetime] = _wall_now) -> None:
        self.clock = clock
        self.store = store
        self.node = node
        self.wall = wall
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._last_write: asyncio.Task[None] | None = None

    def bindings(self, extension: str) -> list[Binding]:
        now = self.clock()
        table = self._bindings.get(extension, {})
        live = {k: b for k, b in table.items() if b.expires_at > now}
        if len(live) < len(table):
            # Expired here: purge what is expired in the store, never delete by key: with a
            # shared store another node may have just refreshed this very binding.
            wall = self.wall()
            self._write(lambda store: store.registrations_purge(wall))
        if live:
            self._bindings[extension] = live
        else:
            self._bindings.pop(extension, None)
        return list(live.values())

    def all(self) -> dict[str, list[Binding]]:
        return {ext: self.bindings(ext) for ext in list(self._bindings)}

    def register(self, extension: str, request: Request, source: Peer) -> tuple[int, list[tuple[str, str]]]:
        """Apply a REGISTER; returns (status, extra headers) for the response."""
        contacts = [v for v in request.headers.values("Contact") if v]
        default = _expires(request.headers.get("Expires"), DEFAULT_EXPIRES)
        _number, _ = request.cseq
        if contacts == ["*"]:
            if default != 0:
                raise SipSyntaxError("Contact: * needs Expires: 0")
            self._bindings.pop(extension, None)
            self._write(self._delete_op(extension, None))
            return 200, []
        now = self.clock()
        path = _path(request)
        table = self._bindings.setdefault(extension, {})
        for value in contacts:
            parsed = parse_contact_list(value)
            if parsed == "*":
                raise SipSyntaxError("Contact: * mixed with other contacts")
            for addr in parsed:
                expires = _expires(addr.param("expires"), default)
                if 0 < expires < MIN_EXPIRES:
                    return 423, [("Min-Expires", str(MIN_EXPIRES))]
                expires = min(expires, MAX_EXPIRES)
                if expires == 0:
                    table.pop(addr.uri, None)
                    self._write(self._delete_op(extension, addr.uri))
                else:
                    binding = Binding(addr.uri, now + expires, source, request.call_id,
                                      _number, (request.headers.get("User-Agent") or "")[:200],
                                      path)
                    table[addr.uri] = binding
                    self._write(self._put_op(extension, binding, now))
        headers = [("Contact", _contact_value(b, now)) for b in self.bindings(extension)]
        if path and _supports_path(request):
            # RFC 3327 §5.3: the stored Path goes back in the 200, in the same order, when the
            # UA said it supports it (a UA that did not would not expect the header).
            headers += [("Path", str(NameAddr(None, uri))) for uri in path]
        return 200, headers


    # -- the store ----------------------------------------------------------------------------

    async def load(self) -> int:
        """At start: drop the expired rows, then take every live binding into memory (a
        restarted node reaches its phones without waiting for their next REGISTER)."""
        if self.store is None:
            return 0
        wall = self.wall()
        await self.store.registrations_purge(wall)
        rows = await self.store.registrations(wall)
        self._bindings = {}
        for row in rows:
            self._bindings.setdefault(row.extension, {})[row.contact] = self._binding(row, wall)
        return len(rows)

    async def refresh(self, extension: str) -> list[Binding]:
        """The store's bindings of ``extension`` (another node sharing the store may have taken
        the REGISTER), into memory; our own pending writes land first."""
        if self.store is None:
            return self.bindings(extension)
        await self.flush()
        wall = self.wall()
        rows = await self.store.registrations(wall, extension=extension)
        if rows:
            self._bindings[extension] = {r.contact: self._binding(r, wall) for r in rows}
        else:
            self._bindings.pop(extension, None)
        return self.bindings(extension)

    async def refresh_all(self) -> int:
        """Every live binding in the store into memory (the ACD's once-a-second poll in a
        cluster: agents' phones registered via other nodes count as registered here)."""
        if self.store is None:
            return sum(len(b) for b in self.all().values())
        await self.flush()
        wall = self.wall()
        rows = await self.store.registrations(wall)
        fresh: dict[str, dict[str, Binding]] = {}
        for row in rows:
            fresh.setdefault(row.extension, {})[row.contact] = self._binding(row, wall)
        self._bindings = fresh
        return len(rows)

    async def flush(self) -> None:
        """Wait until every change so far is in the store (a REGISTER is answered after it)."""
        last = self._last_write
        if last is not None:
            await asyncio.shield(last)

    def _binding(self, row: Registration, wall: datetime) -> Binding:
        left = (row.expires - wall).total_seconds()
        return Binding(row.contact, self.clock() + left,
                       Peer(row.source_transport, row.source_host, row.source_port),
                       row.call_id, row.cseq, row.user_agent, row.path)

    def _put_op(self, extension: str, binding: Binding,
                now: float) -> Callable[[Store], Awaitable[object]]:
        wall = self.wall() + timedelta(seconds=binding.expires_at - now)
        row = Registration(extension, binding.contact, binding.source.transport,
                           binding.source.host, binding.source.port, wall, binding.call_id,
                           binding.cseq, binding.user_agent, self.node, binding.path)
        return lambda store: store.registration_put(row)

    @staticmethod
    def _delete_op(extension: str, contact: str | None) -> Callable[[Store], Awaitable[object]]:
        return lambda store: store.registration_delete(extension, contact)

    def _write(self, op: Callable[[Store], Awaitable[object]]) -> None:
        """Queue one store write after the previous ones: order is what makes a REGISTER
        followed at once by its un-REGISTER end with no row."""
        store = self.store
        if store is None:
            return
        previous = self._last_write

        async def run() -> None:
            nonlocal previous
            if previous is not None:
                await asyncio.wait({previous})  # its failure is logged there, not raised here
                previous = None  # no chain of finished tasks kept alive
            try:
                await op(store)
            except Exception:
                # The store is down: memory still answers; the next REGISTER refresh rewrites.
                log.exception("cannot write a registration change to the store")

        self._last_write = asyncio.get_running_loop().create_task(run())


def _contact_value(binding: Binding, now: float) -> str:
    left = max(0, int(binding.expires_at - now))
    return f"{NameAddr(None, binding.contact)};expires={left}"


def _path(request: Request) -> tuple[str, ...]:
    """The REGISTER's Path URIs in order (RFC 3327 §4: each proxy adds its own on top, so the
    first is the proxy nearest the registrar: the first hop of requests to the contact)."""
    uris: list[str] = []
    for value in request.headers.values("Path"):
        parsed = parse_contact_list(value)
        if parsed == "*":
            raise SipSyntaxError("Path: * is not an address")
        uris.extend(addr.uri for addr in parsed)
    for uri in uris:
        if not uri.lower().startswith(("sip:", "sips:")) or "," in uri:
            raise SipSyntaxError("Path must hold SIP URIs")
    return tuple(uris)


def _supports_path(request: Request) -> bool:
    tags = [t.strip().lower() for v in request.headers.values("Supported") for t in v.split(",")]
    return "path" in tags


def _expires(value: str | None, default: int) -> int:
    if value is None:
        return default
    # RFC 4475 scalar02: absurd values are treated as the maximum, never as overflow; ASCII
    # digits only (isdigit() accepts '²', which int() refuses: no answer at all).
    expires = clamped_uint(value.strip(), UINT32_MAX)
    return default if expires is None else expires
