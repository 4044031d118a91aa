"""Start-up recovery on every backend (issue 9, item 4): `close_interrupted(node, now)` closes the
CDRs a dead run of this node left open, as interrupted, at the last time anything was known."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbxcore.store import CdrEnd, CdrStart, Store, TraceEntry, open_store
from pbxcore.store.base import INTERRUPTED_CAUSE

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def start(call_id: str, node: str, at: datetime = T0) -> CdrStart:
    return CdrStart(call_id=call_id, sip_call_id=f"{call_id}@x", start=at, caller="1001",
                    called="100", node=node)


@pytest.fixture
async def store(dsn: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(dsn, base_dir=tmp_path)
    yield s
    await s.close()


async def test_open_cdrs_of_this_node_are_closed_at_their_last_known_time(store: Store) -> None:
    s = timedelta(seconds=1)
    await store.cdr_open(start("ringing", "a"))  # never answered, nothing traced
    await store.cdr_open(start("talking", "a"))
    await store.cdr_update("talking", answer=T0 + 2 * s)
    await store.trace_extend("talking", [TraceEntry(1, T0 + s, "event", {}),
                                         TraceEntry(2, T0 + 9 * s, "action", {"action": "play"})])
    await store.cdr_open(start("dialling", "a"))
    await store.cdr_update("dialling", answer=T0 + s)
    await store.cdr_leg("dialling", 1, {"target": "1002", "ring_start": (T0 + 3 * s).isoformat(),
                                        "answer": (T0 + 4 * s).isoformat(), "end": None})
    await store.cdr_open(start("legacy", ""))  # written before node ids: any node closes it
    await store.cdr_open(start("other", "b"))  # another node's live call: left alone
    await store.cdr_open(start("done", "a"))
    await store.cdr_close("done", CdrEnd(end=T0 + s, disposition="busy", hangup_by="switch"))
    await store.cdr_open(start("new", "a", at=T0 + 60 * s))  # started after `now`: this run's

    assert await store.close_interrupted("a", T0 + 30 * s) == 4
    got = {c.call_id: c for c in await store.cdrs()}
    for call_id, end, disposition, billsec in [("ringing", T0, "failed", 0.0),
                                               ("talking", T0 + 9 * s, "answered", 7.0),
                                               ("dialling", T0 + 4 * s, "answered", 3.0),
                                               ("legacy", T0, "failed", 0.0)]:
        cdr = got[call_id]
        assert (cdr.end, cdr.disposition, cdr.billsec) == (end, disposition, billsec), call_id
        assert (cdr.hangup_by, cdr.hangup_cause) == ("interrupted", INTERRUPTED_CAUSE)
    assert got["other"].end is None and got["new"].end is None
    assert (got["done"].disposition, got["done"].hangup_by) == ("busy", "switch")
    assert got["talking"].node == "a" and got["talking"].to_json()["node"] == "a"
    assert await store.close_interrupted("a", T0 + 30 * s) == 0  # closed once only
