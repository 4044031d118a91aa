"""What the store keeps of the registrar: one row per binding (RFC 3261 §10.3).

The registrar (pbxcore/call/registrar.py) keeps its fast in-memory view and writes every change
through to the store, so bindings survive a restart and several nodes sharing one PostgreSQL see
the same phones.  ``expires`` is UTC wall time: a monotonic deadline means nothing to another
process.  ``path`` is the REGISTER's Path (RFC 3327 §5.3): the proxies to route requests for this
contact through, first hop first.  The text came from a peer: it is scrubbed like every other
stored string (NUL, lone surrogates) and must be escaped before it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pbxcore.store.values import from_iso, iso, scrub, utc

REGISTRATION_COLUMNS = ("extension, contact, source_transport, source_host, source_port, expires, "
                        "call_id, cseq, user_agent, node, path")
UPSERT_TAIL = ("ON CONFLICT (extension, contact) DO UPDATE SET "
               "source_transport = excluded.source_transport, source_host = excluded.source_host, "
               "source_port = excluded.source_port, expires = excluded.expires, "
               "call_id = excluded.call_id, cseq = excluded.cseq, "
               "user_agent = excluded.user_agent, node = excluded.node, path = excluded.path")


@dataclass(frozen=True)
class Registration:
    """One stored binding of an extension."""

    extension: str
    contact: str  # the Contact URI as registered
    source_transport: str  # where the REGISTER came from: udp | tcp
    source_host: str
    source_port: int
    expires: datetime  # UTC wall time the binding ends
    call_id: str
    cseq: int
    user_agent: str = ""
    node: str = ""  # the [node] id that accepted the REGISTER
    path: tuple[str, ...] = ()  # RFC 3327 Path URIs, first hop first

    def to_json(self) -> dict[str, Any]:
        return {"extension": self.extension, "contact": self.contact,
                "source": f"{self.source_transport}:{self.source_host}:{self.source_port}",
                "expires": iso(self.expires), "call_id": self.call_id, "cseq": self.cseq,
                "user_agent": self.user_agent, "node": self.node, "path": list(self.path)}


def checked_registration(reg: Registration) -> Registration:
    """Validated and storable (scrubbed text, UTC); a bad value is our bug: ValueError."""
    if not reg.extension or not reg.contact:
        raise ValueError("a registration needs an extension and a contact")
    if not 0 < reg.source_port < 65536:
        raise ValueError(f"bad source port {reg.source_port}")
    if any("," in p for p in reg.path):
        raise ValueError("a Path URI with a comma cannot be stored in the path column")
    return replace(reg, extension=scrub(reg.extension), contact=scrub(reg.contact),
                   source_transport=scrub(reg.source_transport).lower(),
                   source_host=scrub(reg.source_host), expires=utc(reg.expires),
                   call_id=scrub(reg.call_id), user_agent=scrub(reg.user_agent),
                   node=scrub(reg.node), path=tuple(scrub(p) for p in reg.path))


def registration_row(reg: Registration, *, text_times: bool) -> tuple[Any, ...]:
    """Row values in REGISTRATION_COLUMNS order (SQLite stores times as ISO text)."""
    return (reg.extension, reg.contact, reg.source_transport, reg.source_host, reg.source_port,
            iso(reg.expires) if text_times else reg.expires, reg.call_id, reg.cseq,
            reg.user_agent, reg.node, ",".join(reg.path))


def registration_from_row(row: Sequence[Any]) -> Registration:
    expires = row[5]
    when = from_iso(expires) if isinstance(expires, str) else utc(expires)
    assert when is not None
    return Registration(row[0], row[1], row[2], row[3], int(row[4]), when, row[6], int(row[7]),
                        row[8], row[9], tuple(p for p in str(row[10]).split(",") if p))
