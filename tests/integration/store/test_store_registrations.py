"""Registrations in the store (issue 13), one behaviour over memory, SQLite and a real PostgreSQL:
insert-or-replace by (extension, contact), delete one or all, live ones only, purge of the
expired, Path and peer text kept as storable text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxcore.store import Registration, Store, open_store

T0 = datetime(2024, 5, 1, 9, 0, 0, 125000, tzinfo=UTC)


@pytest.fixture
async def store(dsn: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(dsn, base_dir=tmp_path)
    yield s
    await s.close()


def reg(extension: str, contact: str, seconds: float, **kw: object) -> Registration:
    base = Registration(extension, contact, "udp", "127.0.0.1", 5070,
                        T0 + timedelta(seconds=seconds), f"cid-{extension}", 1)
    return replace(base, **kw)  # type: ignore[arg-type]


async def test_put_replace_and_read_back(store: Store) -> None:
    await store.registration_put(reg("1001", "sip:a@10.0.0.1", 60, user_agent="Desk"))
    await store.registration_put(reg("1001", "sip:b@10.0.0.2", 60))
    await store.registration_put(reg("1002", "sip:c@10.0.0.3", 60, node="n2",
                                     path=("sip:p1.example;lr", "sip:p2.example;lr")))
    # a refresh of the same contact replaces it (RFC 3261 §10.3 step 7)
    await store.registration_put(reg("1001", "sip:a@10.0.0.1", 120, cseq=2, source_port=5099))
    rows = await store.registrations(T0)
    assert [(r.extension, r.contact) for r in rows] == [
        ("1001", "sip:a@10.0.0.1"), ("1001", "sip:b@10.0.0.2"), ("1002", "sip:c@10.0.0.3")]
    a = rows[0]
    assert (a.cseq, a.source_port, a.expires, a.user_agent) == (2, 5099, T0 + timedelta(seconds=120), "")
    assert rows[2].path == ("sip:p1.example;lr", "sip:p2.example;lr")
    assert rows[2].node == "n2"
    assert rows[2].expires.tzinfo is not None
    assert [r.contact for r in await store.registrations(T0, extension="1002")] == ["sip:c@10.0.0.3"]


async def test_live_only_and_purge(store: Store) -> None:
    await store.registration_put(reg("1001", "sip:old@10.0.0.1", 10))
    await store.registration_put(reg("1001", "sip:new@10.0.0.1", 100))
    later = T0 + timedelta(seconds=10)  # expires at exactly now: gone (expires > now is live)
    assert [r.contact for r in await store.registrations(later)] == ["sip:new@10.0.0.1"]
    assert await store.registrations_purge(later) == 1
    assert [r.contact for r in await store.registrations(T0)] == ["sip:new@10.0.0.1"]


async def test_delete_one_or_all(store: Store) -> None:
    for contact in ("sip:a@h", "sip:b@h"):
        await store.registration_put(reg("1001", contact, 60))
    await store.registration_put(reg("1002", "sip:c@h", 60))
    assert await store.registration_delete("1001", "sip:a@h") == 1
    assert await store.registration_delete("1001", "sip:nope@h") == 0
    assert await store.registration_delete("1001") == 1
    assert [r.extension for r in await store.registrations(T0)] == ["1002"]


async def test_peer_text_is_stored_scrubbed(store: Store) -> None:
    await store.registration_put(reg("1001", "sip:a@h", 60, user_agent="Bad\x00UA\udcff"))
    (row,) = await store.registrations(T0)
    assert row.user_agent == "Bad\ufffdUA\\xff"


async def test_bad_values_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.registration_put(reg("1001", "sip:a@h", 60, source_port=0))
    with pytest.raises(ValueError):
        await store.registration_put(reg("1001", "sip:a@h", 60, path=("sip:a,b",)))
    with pytest.raises(ValueError):
        await store.registration_put(reg("1001", "sip:a@h", 60,
                                         expires=datetime(2024, 5, 1)))  # naive


async def test_survives_reopen(sql_dsn: str, tmp_path: Path) -> None:
    s = await open_store(sql_dsn, base_dir=tmp_path)
    await s.registration_put(reg("1001", "sip:a@h", 60, path=("sip:proxy;lr",)))
    await s.close()
    s = await open_store(sql_dsn, base_dir=tmp_path)
    try:
        (row,) = await s.registrations(T0)
        assert (row.contact, row.path) == ("sip:a@h", ("sip:proxy;lr",))
    finally:
        await s.close()
