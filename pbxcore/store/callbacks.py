"""Stored callbacks (migration 0007): what a restarted switch re-enters into its queues.

Shared by the three backends: the record, its validation and its row form.  SQLite keeps times
as ISO text (`text_times`), PostgreSQL as timestamptz.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

CallbackState = Literal["pending", "connected", "failed"]
CALLBACK_STATES: tuple[str, ...] = get_args(CallbackState)
CALLBACK_COLUMNS = ("id, queue, number, priority, requested, attempts, state, call_id, "
                    "position, updated")
UPSERT_TAIL = ("ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, "
               "state = excluded.state, updated = excluded.updated")


@dataclass(frozen=True)
class CallbackEntry:
    """One callback a waiting caller asked for."""

    id: str  # the virtual caller's id in the ACD model and the journal's callid
    queue: str
    number: str  # what is dialled: an extension or a number through a trunk
    priority: int
    requested: datetime  # UTC: when the caller pressed the key (its place: FIFO by this)
    attempts: int = 0  # customer dialled and not reached so far
    state: CallbackState = "pending"
    call_id: str = ""  # the call that asked for it
    position: int = 0  # the caller's position when it asked
    updated: datetime | None = None  # UTC; None: `requested`


def checked_callback(e: CallbackEntry) -> CallbackEntry:
    if e.state not in CALLBACK_STATES:
        raise ValueError(f"callback state {e.state!r} is not one of {CALLBACK_STATES}")
    if not e.id or not e.queue or not e.number:
        raise ValueError("a callback needs an id, a queue and a number")
    if e.requested.tzinfo is None:
        raise ValueError("callback times must be timezone-aware (UTC)")
    return e


def callback_row(e: CallbackEntry, *, text_times: bool) -> tuple[Any, ...]:
    def t(d: datetime) -> Any:
        return d.astimezone(UTC).isoformat() if text_times else d

    return (e.id, e.queue, e.number, e.priority, t(e.requested), e.attempts, e.state, e.call_id,
            e.position, t(e.updated or e.requested))


def callback_from_row(r: Any) -> CallbackEntry:
    def t(v: Any) -> datetime:
        d = datetime.fromisoformat(v) if isinstance(v, str) else v
        return d if d.tzinfo is not None else d.replace(tzinfo=UTC)

    return CallbackEntry(id=r[0], queue=r[1], number=r[2], priority=int(r[3]),
                         requested=t(r[4]), attempts=int(r[5]), state=r[6], call_id=r[7],
                         position=int(r[8]), updated=t(r[9]))
