"""What the store keeps of outbound campaigns (`pbx campaign run`, migration 0006).

A campaign is named by its list file's absolute path; each line of the list is a row with the
number to call, its columns (the call's variables), and how far it got: ``status`` (pending,
calling, answered, busy, noanswer, failed), ``attempts``, ``result`` (the answered call's
`result` variable), ``call_id`` (the last call placed for it) and ``updated``.  Rows are added
once (a second `campaign_open` keeps the rows already there, with their progress), so a
restarted campaign resumes.  Validation is shared by the three backends.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pbxcore.store.values import from_iso, iso, scrub, utc

ROW_STATUSES = ("pending", "calling", "answered", "busy", "noanswer", "failed")
ROW_COLUMNS = "campaign, row_no, number, vars, status, attempts, result, call_id, updated"
_EMPTY: Mapping[str, str] = types.MappingProxyType({})


@dataclass(frozen=True)
class CampaignRow:
    campaign: str
    row: int  # 1-based line of the list (after the header)
    number: str
    vars: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    status: str = "pending"
    attempts: int = 0
    result: str = ""
    call_id: str = ""
    updated: datetime | None = None


def checked_row(row: CampaignRow) -> CampaignRow:
    if row.status not in ROW_STATUSES:
        raise ValueError(f"campaign row status {row.status!r} is not one of {ROW_STATUSES}")
    if row.row < 1 or row.attempts < 0:
        raise ValueError("campaign row numbers start at 1, attempts at 0")
    return CampaignRow(scrub(row.campaign), row.row, scrub(row.number),
                       {scrub(k): scrub(v) for k, v in row.vars.items()}, row.status,
                       row.attempts, scrub(row.result), scrub(row.call_id),
                       utc(row.updated) if row.updated is not None else None)


def row_params(row: CampaignRow, *, text_times: bool) -> tuple[Any, ...]:
    """The row as ROW_COLUMNS values (vars as JSON text; times as ISO text for SQLite)."""
    updated: Any = iso(row.updated) if text_times else row.updated
    return (row.campaign, row.row, row.number, json.dumps(dict(row.vars), ensure_ascii=False),
            row.status, row.attempts, row.result, row.call_id, updated)


def row_from(values: tuple[Any, ...]) -> CampaignRow:
    campaign, no, number, variables, status, attempts, result, call_id, updated = values
    if isinstance(variables, str):
        variables = json.loads(variables)
    when = from_iso(updated) if isinstance(updated, str) else (
        utc(updated) if updated is not None else None)
    return CampaignRow(campaign, int(no), number, dict(variables), status, int(attempts),
                       result, call_id, when)


def insert_sql(mark: str) -> tuple[str, str]:
    """(campaign insert, row insert): both leave what is already there as it is."""
    marks = ", ".join([mark] * 9)
    return (f"INSERT INTO campaign (name, script, created) VALUES ({mark}, {mark}, {mark}) "
            "ON CONFLICT (name) DO NOTHING",
            f"INSERT INTO campaign_rows ({ROW_COLUMNS}) VALUES ({marks}) "
            "ON CONFLICT (campaign, row_no) DO NOTHING")


def update_sql(mark: str) -> str:
    m = mark
    return (f"UPDATE campaign_rows SET status = {m}, attempts = {m}, result = {m}, "
            f"call_id = {m}, updated = {m} WHERE campaign = {m} AND row_no = {m}")


def update_params(row: CampaignRow, *, text_times: bool) -> tuple[Any, ...]:
    updated: Any = iso(row.updated) if text_times else row.updated
    return (row.status, row.attempts, row.result, row.call_id, updated, row.campaign, row.row)


def select_sql(mark: str) -> str:
    return f"SELECT {ROW_COLUMNS} FROM campaign_rows WHERE campaign = {mark} ORDER BY row_no"
