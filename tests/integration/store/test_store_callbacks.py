"""Stored callbacks (migration 0007), one behaviour over memory, SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxcore.store import CallbackEntry, Store, open_store

T0 = datetime(2024, 5, 1, 9, 0, 0, 125000, tzinfo=UTC)


@pytest.fixture
async def store(dsn: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(dsn, base_dir=tmp_path)
    yield s
    await s.close()


async def test_pending_callbacks_come_back_in_request_order_with_their_attempts(
        store: Store) -> None:
    late = CallbackEntry("cb-b", "sales", "5550200", 0, T0 + timedelta(seconds=30),
                         call_id="c2", position=2)
    early = CallbackEntry("cb-a", "sales", "1002", 5, T0, call_id="c1", position=1)
    await store.callback_save(late)
    await store.callback_save(early)
    assert [e.id for e in await store.callbacks()] == ["cb-a", "cb-b"]
    # An update changes attempts, state and time only (the place, by `requested`, is kept).
    later = T0 + timedelta(minutes=5)
    await store.callback_save(replace(early, attempts=2, number="other", updated=later))
    await store.callback_save(replace(late, state="connected", updated=later))
    (a,) = await store.callbacks()
    assert (a.id, a.number, a.priority, a.attempts, a.requested, a.updated, a.call_id,
            a.position) == ("cb-a", "1002", 5, 2, T0, later, "c1", 1)
    assert [(e.id, e.state) for e in await store.callbacks(state=None)] == [
        ("cb-a", "pending"), ("cb-b", "connected")]
    assert await store.callbacks(state="failed") == []


async def test_a_bad_callback_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.callback_save(CallbackEntry("cb", "q", "1", 0, T0, state="lost"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.callback_save(CallbackEntry("cb", "q", "", 0, T0))
