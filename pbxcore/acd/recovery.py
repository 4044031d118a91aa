"""What a restarted switch finds left open in the store: queue visits and agent sessions.

Pure functions over rows read from the store.  A queue visit is open when its last ENTERQUEUE
has no row that ends it; an open visit gets an INTERRUPTED row (data: the seconds since it
entered, as far as the journal knows), so reports never count a caller as still waiting.  An
agent's last agent_events row says whether it was logged in (and paused) when the switch went
down.
"""

from __future__ import annotations

from collections.abc import Iterable

from pbxcore.store.journal import AgentEvent, JournalEntry

ENDS_A_VISIT = frozenset({
    "COMPLETECALLER", "COMPLETEAGENT", "ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY",
    "EXITEMPTY", "FULL", "TRANSFER", "SHUTDOWN", "INTERRUPTED", "CALLBACK"})


def interrupted_rows(rows: Iterable[JournalEntry]) -> list[JournalEntry]:
    """INTERRUPTED rows for the visits `rows` (oldest first) leave open."""
    open_visits: dict[tuple[str, str], JournalEntry] = {}
    last_seen: dict[tuple[str, str], JournalEntry] = {}
    for row in rows:
        key = (row.call_id, row.queue)
        if row.call_id == "NONE":
            continue
        last_seen[key] = row
        if row.event == "ENTERQUEUE":
            open_visits[key] = row
        elif row.event in ENDS_A_VISIT:
            open_visits.pop(key, None)
    out = []
    for key, entered in open_visits.items():
        last = last_seen[key]
        seconds = round((last.time - entered.time).total_seconds())
        out.append(JournalEntry(time=last.time, queue=entered.queue, event="INTERRUPTED",
                                call_id=entered.call_id, agent=last.agent,
                                data=("", "", str(seconds)), node=entered.node))
    return out


def last_agent_states(events: Iterable[AgentEvent]) -> list[tuple[str, str, str]]:
    """(agent, state, reason) of each agent's newest row (`events` oldest first)."""
    last: dict[str, AgentEvent] = {}
    for e in events:
        last[e.agent] = e
    return [(a, e.state, e.reason) for a, e in sorted(last.items())]
