"""Read-only views of the model for `pbx queues`, `pbx agents` and wallboards.

Times (`since`) are in the model's clock (the `now` the service passes); the service turns them
into wall-clock times.  Counters run since the start or the last `Acd.reset_counters()` (the
service calls it at local midnight, so they read "today").
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxcore.acd.spec import AgentState


@dataclass(frozen=True)
class QueueSnapshot:
    """One queue's live figures."""

    name: str
    """The queue."""
    strategy: str
    """Its strategy."""
    waiting: int
    """Callers waiting (ringing an agent included)."""
    longest_wait: float
    """Seconds the longest-waiting caller has waited (0 when nobody waits)."""
    agents: dict[str, int]
    """Members logged in to this queue, by agent state (every state name present, maybe 0);
    `logged_out` counts members not logged in to this queue."""
    answered: int
    """Callers connected to an agent."""
    answered_in_sl: int
    """Of those, connected within `service_level` seconds."""
    abandoned: int
    """Callers who hung up while waiting."""
    timed_out: int
    """Callers who left with `timeout`."""
    service_level: float | None
    """answered_in_sl / answered (Asterisk's ServicelevelPerf); None before the first answer."""
    service_level_offered: float | None
    """answered_in_sl / (answered + abandoned) (abandons count against SL, Asterisk's
    ServicelevelPerf2); None before the first answer or abandon."""
    handle_time: float
    """The recent average handle time (talk + wrap-up) the wait estimate uses."""
    alerts: tuple[str, ...]
    """The alert figures raised now ("waiting", "longest_wait")."""


@dataclass(frozen=True)
class AgentSnapshot:
    """One agent's live state."""

    extension: str
    """The agent."""
    state: AgentState
    """Its state."""
    reason: str | None
    """The pause reason while paused."""
    since: float
    """When it entered that state (model clock)."""
    calls: int
    """Queue calls answered since the last counter reset ("today")."""
    queues: tuple[str, ...]
    """Queues it is a member of (config order of the queues)."""
    logged_in: tuple[str, ...]
    """Of those, the ones it is logged in to."""
    paused_in: tuple[str, ...]
    """Of those, the ones it is paused in."""
    registered: bool
    """Its phone is registered (an unregistered agent is not rung)."""
    on_direct_call: bool
    """It talks on a direct (non-queue) call, so it is not offered queue calls."""
    call_id: str | None
    """The queue call it rings for, talks on or wraps up, if any."""


@dataclass(frozen=True)
class Snapshot:
    """Every queue and every agent."""

    queues: tuple[QueueSnapshot, ...]
    """Queues in config order."""
    agents: tuple[AgentSnapshot, ...]
    """Agents sorted by extension."""
