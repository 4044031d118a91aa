"""Call records, traces, the queue journal and agent events: ``open_store(dsn)`` picks the
backend from the DSN's scheme.

- ``sqlite:///relative/file.db`` (relative to ``base_dir``), ``sqlite:////absolute/file.db``
- ``postgresql://user@host/db`` (also ``postgres://``; psycopg is imported only then)
- ``memory://`` (in-process, for tests)
"""

from __future__ import annotations

import re
from pathlib import Path

from pbxcore.store.base import (
    DISPOSITIONS,
    HANGUP_BY,
    LEG_DISPOSITIONS,
    TRACE_KINDS,
    Cdr,
    CdrEnd,
    CdrStart,
    Disposition,
    HangupBy,
    LegDisposition,
    Store,
    TraceEntry,
    TraceKind,
    UnknownCallError,
    new_call_id,
)
from pbxcore.store.callbacks import CallbackEntry
from pbxcore.store.journal import (
    AGENT_EVENT_STATES,
    NONE,
    QUEUE_OUTCOMES,
    AgentEvent,
    JournalEntry,
    QueueSegment,
)
from pbxcore.store.registrations import Registration
from pbxcore.store.voicemail import VOICEMAIL_STATUSES, VoicemailMessage

__all__ = [
    "AGENT_EVENT_STATES", "DISPOSITIONS", "HANGUP_BY", "LEG_DISPOSITIONS", "NONE",
    "QUEUE_OUTCOMES", "TRACE_KINDS", "AgentEvent", "CallbackEntry", "Cdr", "CdrEnd", "CdrStart", "Disposition",
    "HangupBy", "JournalEntry", "LegDisposition", "QueueSegment", "Registration", "Store", "TraceEntry",
    "TraceKind", "UnknownCallError", "new_call_id", "open_store", "redact_dsn",
    "sqlite_path", "VOICEMAIL_STATUSES", "VoicemailMessage",
]


def redact_dsn(dsn: str) -> str:
    """The DSN without a password (postgresql://user:secret@host -> postgresql://user:***@host)."""
    return re.sub(r"(//[^/:@]+):[^@/]*@", r"\1:***@", dsn)


def sqlite_path(dsn: str, base_dir: Path) -> Path:
    """The file named by a sqlite:/// DSN: three slashes then a relative path, four for absolute."""
    rest = dsn.removeprefix("sqlite:///")
    if not rest:
        raise ValueError(f"DSN {dsn!r} names no file")
    path = Path(rest)
    return path if path.is_absolute() else base_dir / path


async def open_store(dsn: str, *, base_dir: Path) -> Store:
    """Connect, apply pending migrations, and return the Store named by ``dsn``."""
    if dsn.startswith("sqlite:///"):
        from pbxcore.store.sqlite import SqliteStore

        return await SqliteStore.open(sqlite_path(dsn, base_dir))
    if dsn.startswith(("postgresql://", "postgres://")):
        from pbxcore.store.postgres import PostgresStore

        return await PostgresStore.open(dsn)
    if dsn == "memory://":
        from pbxcore.store.memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unsupported store DSN {dsn!r}: use sqlite:///FILE or postgresql://...")
