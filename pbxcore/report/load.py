"""Read a report's rows from a Store: the period's CDRs, queue journal and agent events.

The only I/O of the report package; the figures are computed by the pure modules.  Reads are
bounded (MAX_ROWS per kind): a period with more rows is refused with a message, never silently
cut short.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pbxcore.report.agents import AgentTime, agent_times, with_wrapups
from pbxcore.report.model import (
    SPILL,
    Dataset,
    Filters,
    Period,
    attach,
    calls,
    visits,
)
from pbxcore.store.base import Cdr, Store

MAX_ROWS = 1_000_000


class TooManyRows(ValueError):
    """The period holds more rows than a report reads at once."""


def _bounded(rows: Sequence[object], what: str) -> None:
    if len(rows) >= MAX_ROWS:
        raise TooManyRows(f"more than {MAX_ROWS} {what} in the period: report a shorter one")


@dataclass(frozen=True)
class Context:
    """What the configuration says that the rows do not."""

    extensions: frozenset[str] = frozenset()  # the switch's [[users]]: their calls are "out"
    service_level: Mapping[str, float] | None = None  # queue -> seconds ([[queues]])
    members: Mapping[str, frozenset[str]] | None = None  # queue -> agent extensions


async def load(store: Store, period: Period, filters: Filters, context: Context, *,
               now: datetime) -> tuple[Dataset, dict[str, AgentTime]]:
    """The filtered dataset of ``period`` and the time per state of the agents it concerns.
    ``now`` ends an agent's last state when the period reaches into the future."""
    cdrs = await store.cdrs(period.since, MAX_ROWS, until=period.until)
    _bounded(cdrs, "calls")
    rows = await store.journal(since=period.since, until=period.until + SPILL, limit=MAX_ROWS)
    _bounded(rows, "journal rows")
    vs = visits(rows, until=period.until)
    known = {c.call_id for c in cdrs}
    extra = []
    for call_id in dict.fromkeys(v.call_id for v in vs if v.call_id not in known):
        cdr = await store.cdr(call_id)  # a call that started before the period and queued in it
        if cdr is not None:
            extra.append(cdr)
    all_calls = calls([*cdrs, *extra], context.extensions)

    seen = min(period.until, max(now, period.since))
    events = await store.agent_events(since=period.since, until=seen, limit=MAX_ROWS)
    _bounded(events, "agent events")
    names = {e.agent for e in events} | {v.agent for v in vs if v.agent}
    for members in (context.members or {}).values():
        names |= members
    before = []
    for name in sorted(names):
        last = await store.agent_events(agent=name, until=period.since, limit=1)
        before += last
    times = agent_times(events, before, Period(period.since, seen))
    vs = attach(with_wrapups(vs, times), all_calls)

    data = Dataset(period=period,
                   calls=[c for c in all_calls if c.call_id in known and filters.call_ok(c)],
                   visits=[v for v in vs if filters.visit_ok(v)],
                   service_level=dict(context.service_level or {}))
    return data, _agents_shown(times, filters, context)


def _agents_shown(times: Mapping[str, AgentTime], filters: Filters,
                  context: Context) -> dict[str, AgentTime]:
    """The agents a filtered report shows: one agent, a queue's members, or all."""
    if filters.agent is not None:
        return {k: v for k, v in times.items() if k == filters.agent}
    if filters.queue is not None and context.members is not None:
        members = context.members.get(filters.queue, frozenset())
        return {k: v for k, v in times.items() if k in members}
    return dict(times)


async def filtered_cdrs(store: Store, *, since: datetime | None, until: datetime | None,
                        filters: Filters, extensions: Iterable[str], limit: int) -> list[Cdr]:
    """`pbx cdr`'s records: the newest ``limit`` CDRs that pass ``filters``."""
    unfiltered = filters == Filters()
    cdrs = await store.cdrs(since, limit if unfiltered else MAX_ROWS, until=until)
    if unfiltered:
        return cdrs
    ok = {c.call_id for c in calls(cdrs, frozenset(extensions)) if filters.call_ok(c)}
    return [c for c in cdrs if c.call_id in ok][:limit]
