"""REGISTER handling (RFC 3261 §10.3): digest-authenticated bindings with expiry.

Bindings live in memory, keyed by extension; a fetch (REGISTER without Contact) lists them, `*`
with Expires 0 removes them all (§10.2.2).  The binding remembers the address the REGISTER came
from, because that is where a phone behind NAT can actually be reached.  Contact parameters that
are not URI parameters (RFC 4475 cparam01) stay out of the stored URI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pbxcore.sip.address import NameAddr, parse_contact_list
from pbxcore.sip.message import Request, SipSyntaxError
from pbxcore.sip.numbers import UINT32_MAX, clamped_uint
from pbxcore.sip.peer import Peer

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


class Registrar:
    """The location service: extension → live bindings."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._bindings: dict[str, dict[str, Binding]] = {}

    def bindings(self, extension: str) -> list[Binding]:
        now = self.clock()
        live = {k: b for k, b in self._bindings.get(extension, {}).items() if b.expires_at > now}
        self._bindings[extension] = live
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
            return 200, []
        now = self.clock()
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
                else:
                    table[addr.uri] = Binding(addr.uri, now + expires, source,
                                              request.call_id, _number,
                                              (request.headers.get("User-Agent") or "")[:200])
        return 200, [("Contact", _contact_value(b, now)) for b in self.bindings(extension)]


def _contact_value(binding: Binding, now: float) -> str:
    left = max(0, int(binding.expires_at - now))
    return f"{NameAddr(None, binding.contact)};expires={left}"


def _expires(value: str | None, default: int) -> int:
    if value is None:
        return default
    # RFC 4475 scalar02: absurd values are treated as the maximum, never as overflow; ASCII
    # digits only (isdigit() accepts '²', which int() refuses: no answer at all).
    expires = clamped_uint(value.strip(), UINT32_MAX)
    return default if expires is None else expires
