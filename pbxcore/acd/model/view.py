"""Build the read-only `Snapshot` of a model (snapshot.py) for the CLI and wallboards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbxcore.acd.model.snapshot import AgentSnapshot, QueueSnapshot, Snapshot
from pbxcore.acd.spec import AGENT_STATES

if TYPE_CHECKING:
    from pbxcore.acd.model.core import Core


def snapshot_of(model: Core, now: float) -> Snapshot:
    queues = []
    for name, q in model._queues.items():
        by_state = dict.fromkeys(AGENT_STATES, 0)
        for m in q.spec.members:
            a = model._agents[m.extension]
            ms = a.memberships[name]
            if not ms.logged_in:
                state = "logged_out"
            elif ms.paused is not None and not a.busy:
                state = "paused"
            else:
                state = a.state
            by_state[state] += 1
        oldest = q.line.oldest()
        answered, in_sl = q.answered, q.answered_in_sl
        offered = answered + q.abandoned
        queues.append(QueueSnapshot(
            name=name, strategy=q.spec.strategy, waiting=len(q.line),
            longest_wait=now - oldest.joined_at if oldest else 0.0, agents=by_state,
            answered=answered, answered_in_sl=in_sl, abandoned=q.abandoned,
            timed_out=q.timed_out,
            service_level=in_sl / answered if answered else None,
            service_level_offered=in_sl / offered if offered else None,
            handle_time=q.talk.mean + q.spec.wrapup,
            alerts=tuple(f for f in ("waiting", "longest_wait") if f in q.alerts.raised)))
    agents = []
    for ext in sorted(model._agents):
        a = model._agents[ext]
        names = tuple(n for n in model._queues if n in a.memberships)
        off = model._offers.get(a.offer_id) if a.offer_id is not None else None
        call_id = off.call_id if off is not None else a.call_id
        agents.append(AgentSnapshot(
            extension=ext, state=a.state, reason=a.reason, since=a.since, calls=a.calls_today,
            queues=names,
            logged_in=tuple(n for n in names if a.memberships[n].logged_in),
            paused_in=tuple(n for n in names if a.memberships[n].logged_in
                            and a.memberships[n].paused is not None),
            registered=a.registered, on_direct_call=a.direct_calls > 0, call_id=call_id))
    return Snapshot(tuple(queues), tuple(agents))
