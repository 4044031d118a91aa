"""Trunks at run time: keep each `register = true` trunk registered, recognise trunk traffic.

Theory of operation: one `RegistrationClient` (pbxcore.sip.registration, sans-IO) per
registering trunk, driven through the switch's `SipEndpoint`.  The switch's handler offers every
response and time-out to `on_response` / `on_timeout` first; they return True when the
transaction was a trunk's REGISTER.  One task owns every registration timer (refresh, back-off).
Each change of a trunk's status is logged at INFO: "trunk provider: registered for 300 s".

Host names are resolved here, not in config (config stays free of network I/O): at `start()`,
and again before each retry after a failure, so a provider that moves is followed.  Inbound
requests are recognised as a trunk's by source IP only, any port (providers send from pools of
ports, and their INVITEs rarely come from the registrar's own port).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pbxcore.config import Config, Trunk
from pbxcore.sip.address import parse_name_addr
from pbxcore.sip.message import Request, Response, SipSyntaxError
from pbxcore.sip.peer import Peer
from pbxcore.sip.registration import RegistrationClient, RegState
from pbxcore.sip.uri import parse_uri
from pbxcore.transport.sip_endpoint import SipEndpoint

log = logging.getLogger("pbxcore.trunks")

RESOLVE_SECONDS = 5.0
Resolver = Callable[[str, int, str], Awaitable[list[str]]]


async def resolve_host(host: str, port: int, transport: str) -> list[str]:
    """Every IP address of `host` (the host itself when it already is one)."""
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(eq=False)
class _Entry:
    trunk: Trunk
    addresses: list[str] = field(default_factory=list)
    client: RegistrationClient | None = None
    shown: str = ""  # status last logged


class TrunkRegistrations:
    """Every trunk of the config; registers those with `register = true`."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        trunks: Sequence[Trunk],
        *,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver = resolve_host,
    ) -> None:
        self.endpoint, self.clock, self._resolver = endpoint, clock, resolver
        self._entries = [_Entry(t) for t in trunks]
        self._by_tx: dict[str, _Entry] = {}
        self._wakeup = asyncio.Event()
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve every trunk, send the first REGISTERs, start the timer task."""
        await asyncio.gather(*(self._resolve(e) for e in self._entries))
        now = self.clock()
        for entry in self._entries:
            if entry.trunk.register:
                entry.client = self._client(entry.trunk)
                self._send(entry, entry.client.start(now))
        self._task = asyncio.create_task(self._timers(), name="trunk-registrations")

    async def stop(self, timeout: float = 2.0) -> None:
        """Remove every binding (REGISTER Expires: 0), waiting at most `timeout` seconds.

        Call it before the endpoint is closed: the answers come through the endpoint.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        now = self.clock()
        for entry in self._entries:
            if entry.client is not None:
                self._send(entry, entry.client.stop(now))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._all_unregistered():
                    self._settled.clear()
                    await self._settled.wait()
        for entry in self._entries:
            self._note(entry)

    # -- what the switch asks -------------------------------------------------------------

    def status(self) -> dict[str, str]:
        """Trunk name → human status ("registered for 300 s", "not registering", ...)."""
        return {e.trunk.name: e.client.status if e.client else "not registering"
                for e in self._entries}

    def is_trunk_source(self, peer: Peer) -> Trunk | None:
        """The trunk whose (resolved) address sent this request, or None; first in file wins."""
        try:
            ip = str(ipaddress.ip_address(peer.host))
        except ValueError:
            return None
        return next((e.trunk for e in self._entries if ip in e.addresses), None)

    def peer_for(self, trunk: Trunk) -> Peer | None:
        """Where to send an outbound request through `trunk` (None while it is unresolved)."""
        entry = next((e for e in self._entries if e.trunk.name == trunk.name), None)
        if entry is None or not entry.addresses:
            return None
        return Peer(trunk.transport, entry.addresses[0], trunk.port)

    def on_response(self, tx: str, response: Response) -> bool:
        """True when `tx` is a trunk's REGISTER (the switch then ignores the response)."""
        entry = self._by_tx.get(tx)
        if entry is None:
            return False
        if response.status >= 200:
            del self._by_tx[tx]
        if entry.client is not None:
            self._send(entry, entry.client.on_response(response, self.clock()))
            self._changed(entry)
        return True

    def on_timeout(self, tx: str, method: str) -> bool:
        """True when `tx` is a trunk's REGISTER that got no answer (non-INVITE Timer F)."""
        entry = self._by_tx.pop(tx, None)
        if entry is None:
            return False
        if entry.client is not None:
            self._send(entry, entry.client.on_timeout(self.clock()))
            self._changed(entry)
        return True

    # -- internals ------------------------------------------------------------------------

    def _client(self, trunk: Trunk) -> RegistrationClient:
        local = self.endpoint.local(trunk.transport)
        host = local.host
        if host in ("0.0.0.0", "::") and self._entry(trunk).addresses:
            host = _route_source(self._entry(trunk).addresses[0], trunk.port)
        hostport = f"[{host}]:{local.port}" if ":" in host else f"{host}:{local.port}"
        param = ";transport=tcp" if trunk.transport == "tcp" else ""
        user = trunk.username or ""
        domain = f"[{trunk.domain}]" if ":" in trunk.domain else trunk.domain
        return RegistrationClient(
            f"sip:{user}@{domain}", f"sip:{domain}", f"sip:{user}@{hostport}{param}", user,
            trunk.password or "", trunk.expires, via=f"SIP/2.0/{trunk.transport.upper()} {hostport}",
        )

    def _entry(self, trunk: Trunk) -> _Entry:
        return next(e for e in self._entries if e.trunk is trunk)

    async def _resolve(self, entry: _Entry) -> None:
        trunk = entry.trunk
        try:
            found = await asyncio.wait_for(
                self._resolver(trunk.host, trunk.port, trunk.transport), RESOLVE_SECONDS)
        except (OSError, TimeoutError) as exc:
            log.warning("trunk %s: cannot resolve %s: %s", trunk.name, trunk.host, exc or "timeout")
            return  # keep the addresses we had, if any
        entry.addresses = found

    def _send(self, entry: _Entry, request: Request | None) -> None:
        if request is None or entry.client is None:
            return
        if not entry.addresses:
            self._send(entry, entry.client.on_timeout(self.clock(), f"cannot resolve {entry.trunk.host}"))
            self._changed(entry)
            return
        peer = Peer(entry.trunk.transport, entry.addresses[0], entry.trunk.port)
        self._by_tx[self.endpoint.request(request, peer)] = entry
        self._changed(entry)

    def _changed(self, entry: _Entry) -> None:
        self._note(entry)
        self._wakeup.set()
        if self._all_unregistered():
            self._settled.set()

    def _note(self, entry: _Entry) -> None:
        if entry.client is not None and entry.client.status != entry.shown:
            entry.shown = entry.client.status
            log.info("trunk %s: %s", entry.trunk.name, entry.shown)

    def _all_unregistered(self) -> bool:
        return all(e.client is None or e.client.state is RegState.UNREGISTERED
                   for e in self._entries)

    async def _timers(self) -> None:
        while True:
            deadlines = [d for e in self._entries if e.client
                         for d in [e.client.next_deadline()] if d is not None]
            delay = max(0.0, min(deadlines) - self.clock()) if deadlines else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)
            for entry in self._entries:
                client = entry.client
                deadline = client.next_deadline() if client else None
                if client is None or deadline is None or deadline > self.clock():
                    continue
                if client.state is RegState.FAILED:
                    await self._resolve(entry)  # the provider may have moved
                try:
                    self._send(entry, client.handle_timer(self.clock()))
                except Exception:  # our bug: keep the other trunks registered
                    log.exception("trunk %s: timer failed", entry.trunk.name)


def _route_source(ip: str, port: int) -> str:
    """The local address the kernel would send from to reach `ip` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((ip, port))
        return str(probe.getsockname()[0])


def called_number(trunk: Trunk, request: Request) -> str:
    """The dialled number (DID) of an INVITE from `trunk`.

    Providers that we register with send to our Contact, `sip:<username>@us`, and carry the DID
    in To; others put the DID in the Request-URI.  So: the Request-URI user, unless it is empty
    or our own username, then the To user.
    """
    try:
        user = parse_uri(request.uri).user_unescaped or ""
    except SipSyntaxError:
        user = ""
    if user and user != trunk.username:
        return user
    try:
        to_user = parse_name_addr(request.headers.get("To") or "").sip_uri.user_unescaped
    except SipSyntaxError:
        return user
    return to_user or user


async def start_trunks(endpoint: SipEndpoint, config: Config) -> TrunkRegistrations:
    """Build and start the trunks of `config` on a started endpoint (the composition root's
    one call); `await trunks.stop()` before `endpoint.close()`."""
    trunks = TrunkRegistrations(endpoint, config.trunks)
    await trunks.start()
    return trunks
