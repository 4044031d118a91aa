"""A fixture day of a small call centre for the report tests, written through the real Store API.

Two queues: support (service_level 20 s) and sales (30 s); agents 1001 and 1002; the switch's
own extensions are 1001, 1002, 1003 (so 1003's call is outbound).  D = Monday 2026-05-04 (UTC),
the report's period is D 00:00 to D+2 00:00.

| call | start | caller -> called | queue: entered, outcome | wait | agent | talk | wrap-up | end (duration) |
|---|---|---|---|---|---|---|---|---|
| C1 | D 09:00:00 | 0611000001 -> 0800100100 | support 09:00:05, answered | 10 | 1001 | 120 | 30 | 09:02:15 (135), leg hold 12 s |
| C2 | D 09:10:00 | 0611000002 -> 0800100100 | support 09:10:02, answered | 25 | 1002 | 60 | 20 | 09:11:27 (87) |
| C3 | D 09:20:00 | 0611000003 -> 0800200200 | support 09:20:01, abandoned | 3 | | | | 09:20:04 (4) abandoned |
| C4 | D 10:05:00 | 0611000004 -> 0800100100 | support 10:05:01, abandoned | 40 | | | | 10:05:41 (41) abandoned |
| C5 | D 10:30:00 | 0611000005 -> 0800200200 | sales 10:30:01, answered | 5 | 1001 | 200 | 10 | 10:33:26 (206) |
| C6 | D 11:00:00 | 0611000006 -> 0800200200 | sales 11:00:02, timeout | 60 | | | | 11:01:10 (70) |
| C7 | D 11:30:00 | 1003 -> 1001 (out) | no queue; leg 1001 answered | | | | | 11:30:30 (30) |
| C8 | D+1 09:00:00 | 0611000008 -> 0800100100 | support 09:00:01, answered | 15 | 1002 | 90 | 0 | 09:01:46 (106) |

Agent events: 1001 logs in D 08:00 (available), talks 09:00:15-09:02:15, wraps up to 09:02:45,
pauses "lunch" 10:00-10:20, talks 10:30:06-10:33:26, wraps up to 10:33:36, pauses "training"
12:00-12:30, logs out 12:30.  1002 was logged out since D-1 23:00 (before the period), logs in
D 09:00, talks 09:10:27-09:11:27, wraps up to 09:11:47, pauses (no reason) 09:30-09:45, logs out
11:00; on D+1 logs in 08:55, talks 09:00:16-09:01:46 (no wrap-up), logs out 09:30.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pbxcore.store import AgentEvent, CdrEnd, CdrStart, JournalEntry, QueueSegment, Store

D = datetime(2026, 5, 4, tzinfo=UTC)
SINCE, UNTIL = D, D + timedelta(days=2)
ROUTE, INTERNAL = "/site/scripts/queue.py", "/site/scripts/internal.py"
EXTENSIONS = frozenset({"1001", "1002", "1003"})
SERVICE_LEVEL = {"support": 20.0, "sales": 30.0}
MEMBERS = {"support": frozenset({"1001", "1002"}), "sales": frozenset({"1001"})}


def at(day: int, hms: str) -> datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return D + timedelta(days=day, hours=h, minutes=m, seconds=s)


# call, day, start, caller, called, queue, entered, outcome, wait, agent, talk, end, disposition
CALLS = [
    ("C1", 0, "09:00:00", "0611000001", "0800100100", "support", "09:00:05", "answered", 10,
     "1001", 120, "09:02:15", "answered"),
    ("C2", 0, "09:10:00", "0611000002", "0800100100", "support", "09:10:02", "answered", 25,
     "1002", 60, "09:11:27", "answered"),
    ("C3", 0, "09:20:00", "0611000003", "0800200200", "support", "09:20:01", "abandoned", 3,
     None, 0, "09:20:04", "abandoned"),
    ("C4", 0, "10:05:00", "0611000004", "0800100100", "support", "10:05:01", "abandoned", 40,
     None, 0, "10:05:41", "abandoned"),
    ("C5", 0, "10:30:00", "0611000005", "0800200200", "sales", "10:30:01", "answered", 5,
     "1001", 200, "10:33:26", "answered"),
    ("C6", 0, "11:00:00", "0611000006", "0800200200", "sales", "11:00:02", "timeout", 60,
     None, 0, "11:01:10", "answered"),
    ("C8", 1, "09:00:00", "0611000008", "0800100100", "support", "09:00:01", "answered", 15,
     "1002", 90, "09:01:46", "answered"),
]

AGENT_EVENTS = [
    ("1001", 0, "08:00:00", "available", ""), ("1001", 0, "09:00:15", "talking", ""),
    ("1001", 0, "09:02:15", "wrapup", ""), ("1001", 0, "09:02:45", "available", ""),
    ("1001", 0, "10:00:00", "paused", "lunch"), ("1001", 0, "10:20:00", "available", ""),
    ("1001", 0, "10:30:06", "talking", ""), ("1001", 0, "10:33:26", "wrapup", ""),
    ("1001", 0, "10:33:36", "available", ""), ("1001", 0, "12:00:00", "paused", "training"),
    ("1001", 0, "12:30:00", "logged_out", ""),
    ("1002", -1, "23:00:00", "logged_out", ""), ("1002", 0, "09:00:00", "available", ""),
    ("1002", 0, "09:10:27", "talking", ""), ("1002", 0, "09:11:27", "wrapup", ""),
    ("1002", 0, "09:11:47", "available", ""), ("1002", 0, "09:30:00", "paused", ""),
    ("1002", 0, "09:45:00", "available", ""), ("1002", 0, "11:00:00", "logged_out", ""),
    ("1002", 1, "08:55:00", "available", ""), ("1002", 1, "09:00:16", "talking", ""),
    ("1002", 1, "09:01:46", "wrapup", ""), ("1002", 1, "09:01:46", "available", ""),
    ("1002", 1, "09:30:00", "logged_out", ""),
]


async def write_fixture(store: Store) -> None:
    """The calls, their queue journal and the agent events, as the switch would write them."""
    journal: list[JournalEntry] = []
    for (cid, day, start, caller, called, queue, entered, outcome, wait, agent, talk, end,
         disposition) in CALLS:
        t0, tq, t_end = at(day, start), at(day, entered), at(day, end)
        await store.cdr_open(CdrStart(cid, f"{cid}@peer", t0, caller, called, "", ROUTE))
        await store.cdr_update(cid, answer=tq)  # the queue answers the caller
        journal.append(JournalEntry(tq, queue, "ENTERQUEUE", cid, data=("", caller, "1")))
        left = tq + timedelta(seconds=wait)
        if outcome == "answered":
            assert agent is not None
            journal.append(JournalEntry(left, queue, "CONNECT", cid, agent,
                                        (str(wait), f"{cid}-leg", "2")))
            journal.append(JournalEntry(left + timedelta(seconds=talk), queue,
                                        "COMPLETEAGENT" if cid == "C5" else "COMPLETECALLER",
                                        cid, agent, (str(wait), str(talk), "1")))
            leg = {"target": agent, "uri": f"sip:{agent}@127.0.0.1", "disposition": "answered",
                   "sip_code": 200, "reason": "OK", "answer": left.isoformat(),
                   "end": t_end.isoformat(), "talk_seconds": float(talk)}
            if cid == "C1":
                leg["hold_seconds"] = 12.0
            await store.cdr_leg(cid, 1, leg)
        else:
            event = {"abandoned": "ABANDON", "timeout": "EXITWITHTIMEOUT"}[outcome]
            journal.append(JournalEntry(left, queue, event, cid, data=("1", "1", str(wait))))
        await store.cdr_queue(cid, QueueSegment(1, queue, tq, 1, 0, float(wait), agent, outcome))
        await store.cdr_close(cid, CdrEnd(t_end, disposition,  # type: ignore[arg-type]
                                          "caller", "BYE", None))
    # C7: an internal call from extension 1003 to agent 1001, no queue
    await store.cdr_open(CdrStart("C7", "C7@peer", at(0, "11:30:00"), "1003", "1001", "",
                                  INTERNAL))
    await store.cdr_update("C7", answer=at(0, "11:30:02"))
    await store.cdr_leg("C7", 1, {"target": "1001", "uri": "sip:1001@127.0.0.1",
                                  "disposition": "answered", "sip_code": 200, "reason": "OK",
                                  "talk_seconds": 28.0})
    await store.cdr_close("C7", CdrEnd(at(0, "11:30:30"), "answered", "caller", "BYE", None))
    journal.sort(key=lambda e: e.time)
    await store.journal_append(journal)
    await store.agent_event_append([AgentEvent(at(day, hms), agent, state, reason)
                                    for agent, day, hms, state, reason in AGENT_EVENTS])
