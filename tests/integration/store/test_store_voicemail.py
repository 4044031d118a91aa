"""The voicemail index, one behaviour over memory, SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxcore.store import Store, VoicemailMessage, open_store

T0 = datetime(2024, 5, 1, 9, 0, 0, 125000, tzinfo=UTC)


@pytest.fixture
async def store(dsn: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(dsn, base_dir=tmp_path)
    yield s
    await s.close()


def message(box: str, minute: int, caller: str = "0441234567") -> VoicemailMessage:
    return VoicemailMessage(box=box, time=T0 + timedelta(minutes=minute), seconds=4.25,
                            recording=f"voicemail/{box}/{minute}.wav", caller=caller,
                            caller_name="Ann \x00\udcff", call_id=f"c{minute}")


async def test_messages_are_indexed_by_box_oldest_first(store: Store) -> None:
    second = await store.voicemail_add(message("sales", 2))
    first = await store.voicemail_add(message("sales", 1))
    await store.voicemail_add(message("201", 0))
    assert first.id and second.id and first.id != second.id
    listed = await store.voicemail_messages("sales")
    assert [m.id for m in listed] == [first.id, second.id]
    got = listed[0]
    assert (got.box, got.time, got.seconds, got.recording, got.caller, got.status) == (
        "sales", T0 + timedelta(minutes=1), 4.25, "voicemail/sales/1.wav", "0441234567", "new")
    assert got.caller_name == "Ann \ufffd\\xff"  # scrubbed the same on every backend
    assert await store.voicemail_message(first.id) == got
    assert await store.voicemail_message(99999) is None
    assert await store.voicemail_counts("sales") == (2, 0)


async def test_mark_heard_and_deleted(store: Store) -> None:
    a = await store.voicemail_add(message("sales", 1))
    b = await store.voicemail_add(message("sales", 2))
    assert await store.voicemail_mark(a.id, "heard")
    assert await store.voicemail_counts("sales") == (1, 1)
    assert [m.id for m in await store.voicemail_messages("sales", status="new")] == [b.id]
    assert await store.voicemail_mark(b.id, "deleted")
    assert [m.id for m in await store.voicemail_messages("sales")] == [a.id]
    assert [m.id for m in await store.voicemail_messages("sales", status="deleted")] == [b.id]
    assert await store.voicemail_counts("sales") == (0, 1)
    assert not await store.voicemail_mark(99999, "heard")
    with pytest.raises(ValueError):
        await store.voicemail_mark(a.id, "lost")


async def test_index_survives_reopen(sql_dsn: str, tmp_path: Path) -> None:
    s = await open_store(sql_dsn, base_dir=tmp_path)
    added = await s.voicemail_add(message("sales", 1))
    await s.close()
    s = await open_store(sql_dsn, base_dir=tmp_path)
    try:
        assert await s.voicemail_messages("sales") == [added]
    finally:
        await s.close()
