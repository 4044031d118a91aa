"""Caller text that is not valid Unicode (issue 9, item 3): every backend stores every string the
same way, through ``store_text``, and a CDR is never lost for it.

The SIP parser decodes UTF-8 with ``surrogateescape``, so a From user ``12%FF%FE34`` or a display
name with the bytes ff fe arrives as lone surrogates, which SQLite and PostgreSQL cannot encode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxcore.store import CdrEnd, CdrStart, Store, TraceEntry, new_call_id, open_store
from pbxcore.store.base import store_text

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# Ordinary characters mixed with NUL and every kind of lone surrogate: the escaped bytes of
# surrogateescape (U+DC80..U+DCFF) and the rest of the surrogate block.
_CHARS = st.one_of(
    st.characters(),
    st.just("\x00"),
    st.integers(0xDC80, 0xDCFF).map(chr),
    st.integers(0xD800, 0xDFFF).map(chr),
)
HOSTILE = st.lists(_CHARS, max_size=12).map("".join)


def test_store_text_keeps_byte_values_and_valid_text() -> None:
    assert store_text("12\udcff\udcfe34") == "12\\xff\\xfe34"
    assert store_text("\udcff\udcfe") == "\\xff\\xfe"
    assert store_text("a\x00b") == "a\ufffdb"
    assert store_text("\ud800x") == "\\ud800x"
    assert store_text("Zoë 名前 \\x41") == "Zoë 名前 \\x41"  # valid text is never touched


@given(HOSTILE)
def test_store_text_is_always_encodable_and_only_changes_what_it_must(text: str) -> None:
    out = store_text(text)
    out.encode("utf-8")  # strict: raises on any surrogate left
    assert "\x00" not in out
    if "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert out == text


@pytest.fixture
def loop_store(dsn: str, tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Store]]:
    """One store for all hypothesis examples of a test, on a loop of its own (the examples run
    synchronously, so they cannot share pytest-asyncio's loop)."""
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(open_store(dsn, base_dir=tmp_path))
    try:
        yield loop, store
    finally:
        loop.run_until_complete(store.close())
        loop.close()


async def _every_field(store: Store, text: str) -> None:
    call_id = new_call_id()
    want = store_text(text)
    await store.cdr_open(CdrStart(call_id=call_id, sip_call_id=f"{text}@x", start=T0,
                                  caller=text, called=text, caller_name=text, route=text))
    await store.cdr_update(call_id, answer=T0 + timedelta(seconds=1), vars={text: text})
    await store.cdr_append(call_id, "recordings", text)
    await store.cdr_append(call_id, "script_errors", text)
    await store.cdr_leg(call_id, 1, {"target": text, text: [text]})
    await store.trace_append(call_id, TraceEntry(1, T0, "script", {"stdout": text, text: 1}))
    await store.trace_extend(call_id, [TraceEntry(2, T0, "note", {"text": [text]})])
    open_cdr = await store.cdr(call_id)
    assert open_cdr is not None
    assert open_cdr.recordings == (want,) and open_cdr.script_errors == (want,)
    await store.cdr_close(call_id, CdrEnd(end=T0 + timedelta(seconds=3), disposition="answered",
                                          hangup_by="caller", hangup_cause=text))
    cdr = await store.cdr(call_id)
    assert cdr is not None
    assert (cdr.sip_call_id, cdr.caller, cdr.called, cdr.caller_name, cdr.route) == (
        f"{want}@x", want, want, want, want)
    assert dict(cdr.vars) == {want: want} and cdr.hangup_cause == want
    assert cdr.legs == ({"leg": 1, "target": want, want: [want]},)
    assert (cdr.disposition, cdr.billsec) == ("answered", 2.0)
    entries = await store.trace(call_id)
    assert [dict(e.data) for e in entries] == [{"stdout": want, want: 1}, {"text": [want]}]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=HOSTILE)
def test_every_text_field_round_trips_through_store_text(
        loop_store: tuple[asyncio.AbstractEventLoop, Store], text: str) -> None:
    loop, store = loop_store
    loop.run_until_complete(_every_field(store, text))


async def test_caller_bytes_from_the_issue_are_stored_escaped(dsn: str, tmp_path: Path) -> None:
    store = await open_store(dsn, base_dir=tmp_path)
    try:
        await store.cdr_open(CdrStart(call_id="u1", sip_call_id="u1@x", start=T0,
                                      caller="12\udcff\udcfe34", called="100",
                                      caller_name="\udcff\udcfe"))
        await store.cdr_close("u1", CdrEnd(end=T0, disposition="failed", hangup_by="switch"))
        cdr = await store.cdr("u1")
        assert cdr is not None
        assert (cdr.caller, cdr.caller_name, cdr.disposition) == ("12\\xff\\xfe34", "\\xff\\xfe",
                                                                  "failed")
    finally:
        await store.close()
