"""Campaign rows (migration 0006) over memory, SQLite and a real PostgreSQL: rows added once
(a second open keeps their progress: the resume), updated one by one, read back by row number,
caller text (a name with a lone surrogate byte) stored escaped like every other store text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxcore.store import Store, open_store
from pbxcore.store.campaigns import CampaignRow

T0 = datetime(2026, 12, 4, 9, 0, 0, 250000, tzinfo=UTC)


@pytest.fixture
async def store(dsn: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(dsn, base_dir=tmp_path)
    yield s
    await s.close()


def rows(name: str) -> list[CampaignRow]:
    return [CampaignRow(name, 1, "1002", {"order": "4711", "name": "Анна"}),
            CampaignRow(name, 2, "1003", {"order": "4712", "name": "Bob\udcff"}),
            CampaignRow(name, 3, "+79161234567")]


async def test_rows_are_added_once_and_keep_their_progress(store: Store) -> None:
    await store.campaign_open("/lists/a.csv", "notify.sh", T0, rows("/lists/a.csv"))
    first = (await store.campaign_rows("/lists/a.csv"))[0]
    done = CampaignRow(first.campaign, 1, first.number, first.vars, "answered", 1, "confirmed",
                       "01CALL", T0 + timedelta(seconds=5))
    await store.campaign_update(done)
    calling = CampaignRow("/lists/a.csv", 2, "1003", {}, "calling", 2, "", "01CALL2", T0)
    await store.campaign_update(calling)
    # the campaign is run again (resumed): the rows already there are not reset
    await store.campaign_open("/lists/a.csv", "notify.sh", T0 + timedelta(hours=1),
                              rows("/lists/a.csv"))
    got = await store.campaign_rows("/lists/a.csv")
    assert [(r.row, r.number, r.status, r.attempts, r.result, r.call_id) for r in got] == [
        (1, "1002", "answered", 1, "confirmed", "01CALL"),
        (2, "1003", "calling", 2, "", "01CALL2"),
        (3, "+79161234567", "pending", 0, "", "")]
    assert got[0].updated == T0 + timedelta(seconds=5) and got[2].updated is None
    assert got[0].vars == {"order": "4711", "name": "Анна"}
    assert got[1].vars == {"order": "4712", "name": "Bob\\xff"}  # stored escaped
    assert await store.campaign_rows("/lists/other.csv") == []


async def test_campaigns_are_separate_and_bad_rows_refused(store: Store) -> None:
    await store.campaign_open("/a.csv", "s", T0, rows("/a.csv")[:1])
    await store.campaign_open("/b.csv", "s", T0, rows("/b.csv")[:2])
    assert [len(await store.campaign_rows(n)) for n in ("/a.csv", "/b.csv")] == [1, 2]
    with pytest.raises(ValueError):
        await store.campaign_update(CampaignRow("/a.csv", 1, "1002", status="exploded"))
