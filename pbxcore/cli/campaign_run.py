"""The driver of `pbx campaign run`: a notification list dialled through the running switch.

Theory of operation.  Every line of the CSV list is a row of the campaign in the store
(migration 0006), named by the list's absolute path.  The driver places one `originate` (script
mode) per row through the control socket, the row's columns as the call's variables, at most
`concurrency` at once and `rate` new calls a second, only inside the time window; it follows
each call to its closed CDR (the switch writes it; the driver only reads), and records the
row's outcome: answered (with the script's `result` variable), busy, noanswer or failed.  A
busy, unanswered or failed row is tried again after `backoff * 2**(attempts-1)` seconds, up to
`retries` more times.  Every change is written to the store first, then to the results CSV
beside the list, so a campaign killed at any moment resumes where it stopped: rows already
final are skipped, and a row whose call was out when it died ("calling") is followed to that
call's CDR instead of being called twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from pbxcore.cli.control import _exchange
from pbxcore.control.protocol import encode_request
from pbxcore.store import Cdr, Store
from pbxcore.store.campaigns import CampaignRow

FINAL_FAILURES = ("busy", "noanswer", "failed")
RESULT_COLUMNS = ("status", "attempts", "result", "call_id")
_VAR = re.compile(r"[^A-Za-z0-9_]")
CDR_WAIT = 3600.0  # seconds a placed call may take before its row is given up as failed
UNKNOWN_CALL = 60.0  # seconds a call id may go without a CDR (a switch with another store)


@dataclass(frozen=True)
class Plan:
    list_path: Path
    script: str
    control: Path
    concurrency: int = 1
    rate: float = 1.0  # new calls a second
    retries: int = 0
    window: tuple[clock_time, clock_time] | None = None
    backoff: float = 60.0  # seconds before the first retry; doubles each time
    ring_timeout: float | None = None


def parse_window(text: str) -> tuple[clock_time, clock_time]:
    m = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", text)
    if not m or int(m[1]) > 23 or int(m[3]) > 23 or int(m[2]) > 59 or int(m[4]) > 59:
        raise ValueError(f"window {text!r}: expected HH:MM-HH:MM, e.g. 09:00-20:00")
    return clock_time(int(m[1]), int(m[2])), clock_time(int(m[3]), int(m[4]))


def in_window(window: tuple[clock_time, clock_time] | None, now: datetime) -> bool:
    """Local wall-clock window; one that ends before it starts spans midnight."""
    if window is None:
        return True
    start, end = window
    t = now.time()
    return start <= t < end if start <= end else (t >= start or t < end)


def var_name(column: str) -> str:
    name = _VAR.sub("_", column.strip()).lower()[:64] or "column"
    return f"_{name}" if name[0].isdigit() else name


def read_list(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of the list; the number is the `number` column, or else the first."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    if not header:
        raise ValueError(f"{path}: empty list (a header line naming the columns is needed)")
    return header, rows


def number_column(header: list[str]) -> str:
    return next((h for h in header if h.strip().lower() == "number"), header[0])


def outcome(cdr: Cdr) -> tuple[str, str]:
    """A closed CDR of an originated call → the row's status and result."""
    if cdr.disposition == "answered":
        return "answered", str(cdr.vars.get("result", ""))
    return {"busy": "busy", "no answer": "noanswer"}.get(cdr.disposition or "", "failed"), ""


class Campaign:
    """One run over the list; `on_change` is told after every row update (progress)."""

    def __init__(self, store: Store, plan: Plan,
                 on_change: Callable[[list[CampaignRow]], None] = lambda rows: None) -> None:
        self.store, self.plan, self.on_change = store, plan, on_change
        self.name = str(plan.list_path.resolve())
        self.header: list[str] = []
        self.lines: list[dict[str, str]] = []
        self.rows: dict[int, CampaignRow] = {}
        self.results = plan.list_path.with_name(plan.list_path.stem + ".results.csv")

    def final(self, r: CampaignRow) -> bool:
        return r.status == "answered" or (r.status in FINAL_FAILURES
                                          and r.attempts > self.plan.retries)

    def due(self, r: CampaignRow, now: datetime) -> bool:
        if self.final(r) or r.status == "calling":
            return False
        if r.attempts == 0 or r.updated is None:
            return True
        return now >= r.updated + timedelta(seconds=self.plan.backoff * 2 ** (r.attempts - 1))

    async def load(self) -> None:
        self.header, self.lines = read_list(self.plan.list_path)
        column = number_column(self.header)
        rows = [CampaignRow(self.name, i, line.get(column, ""),
                            {var_name(k): v for k, v in line.items()})
                for i, line in enumerate(self.lines, start=1)]
        await self.store.campaign_open(self.name, self.plan.script, datetime.now(UTC), rows)
        self.rows = {r.row: r for r in await self.store.campaign_rows(self.name)}

    async def run(self) -> list[CampaignRow]:
        await self.load()
        self.on_change(self.snapshot())
        flying: dict[int, asyncio.Task[CampaignRow]] = {}
        for r in self.rows.values():  # calls an interrupted run left out: follow, not redial
            if r.status == "calling" and r.call_id:
                flying[r.row] = asyncio.create_task(self._follow(r))
        last_start = float("-inf")
        try:
            while True:
                now = datetime.now(UTC)
                due = [r for r in self.rows.values() if r.row not in flying and self.due(r, now)]
                waiting = any(not self.final(r) for r in self.rows.values())
                if not flying and not waiting:
                    break
                gap = 1.0 / self.plan.rate
                if (due and len(flying) < self.plan.concurrency
                        and time.monotonic() - last_start >= gap
                        and in_window(self.plan.window, datetime.now().astimezone())):
                    last_start = time.monotonic()
                    r = due[0]
                    flying[r.row] = asyncio.create_task(self._place(r))
                    continue
                if flying:
                    await asyncio.wait(set(flying.values()), timeout=0.2,
                                       return_when=asyncio.FIRST_COMPLETED)
                else:
                    await asyncio.sleep(0.2)
                for row_no, task in list(flying.items()):
                    if task.done():
                        del flying[row_no]
                        await self._save(task.result())
        finally:
            for task in flying.values():
                task.cancel()
            for task in flying.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        return self.snapshot()

    def snapshot(self) -> list[CampaignRow]:
        return [r for _, r in sorted(self.rows.items())]

    async def _save(self, row: CampaignRow) -> None:
        self.rows[row.row] = row
        await self.store.campaign_update(row)
        self.write_results()
        self.on_change(self.snapshot())

    async def _place(self, r: CampaignRow) -> CampaignRow:
        args: dict[str, Any] = {"from": r.number, "script": self.plan.script,
                                "vars": dict(r.vars)}
        if self.plan.ring_timeout is not None:
            args["timeout"] = self.plan.ring_timeout
        response = await asyncio.to_thread(_exchange, self.plan.control,
                                           encode_request("originate", args))
        now = datetime.now(UTC)
        if not response.ok:  # refused (not allowed, bad number): no retry can help
            return replace(r, status="failed", attempts=self.plan.retries + 1,
                           result=str(response.error)[:200], call_id="", updated=now)
        calling = replace(r, status="calling", attempts=r.attempts + 1,
                          call_id=str(response.result["call_id"]), result="", updated=now)
        await self._save(calling)
        return await self._follow(calling)

    async def _follow(self, r: CampaignRow) -> CampaignRow:
        started = time.monotonic()
        while True:
            cdr = await self.store.cdr(r.call_id)
            if cdr is not None and cdr.end is not None:
                status, result = outcome(cdr)
                return replace(r, status=status, result=result, updated=datetime.now(UTC))
            waited = time.monotonic() - started
            if waited > CDR_WAIT or (cdr is None and waited > UNKNOWN_CALL):
                return replace(r, status="failed", result="no call record",
                               updated=datetime.now(UTC))
            await asyncio.sleep(0.5)

    def write_results(self) -> None:
        """LIST.results.csv: the list's columns, then status, attempts, result, call_id."""
        tmp = self.results.with_name(f".{self.results.name}.{os.getpid()}")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([*self.header, *RESULT_COLUMNS])
            for i, line in enumerate(self.lines, start=1):
                r = self.rows.get(i)
                extra = ([r.status, str(r.attempts), r.result, r.call_id] if r is not None
                         else ["", "", "", ""])
                writer.writerow([_csv_safe(line.get(h, "")) for h in self.header]
                                + [_csv_safe(x) for x in extra])
        os.replace(tmp, self.results)


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @) is written as text."""
    return "'" + value if value[:1] in ("=", "@") else value


def counts(rows: list[CampaignRow], final: Callable[[CampaignRow], bool]) -> Mapping[str, int]:
    out = {"answered": 0, "busy": 0, "noanswer": 0, "failed": 0, "calling": 0, "done": 0}
    for r in rows:
        if r.status in out:
            out[r.status] += 1
        out["done"] += final(r)
    return out
