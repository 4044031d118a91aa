"""What the ACD model asks its service to do: frozen decisions, one docstring per field.

The model never acts; every input returns a list of these, in the order they are to be carried
out (STYLE: aioquic's events).  Times are seconds in the caller's monotonic clock (`now`);
durations are seconds unless a field says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pbxcore.acd.spec import JournalEvent, QueueResult

AlertFigure = Literal["waiting", "longest_wait"]


@dataclass(frozen=True)
class Offer:
    """Ring these agents for this waiting caller (several agents only with `ringall`)."""

    offer_id: int
    """Names this offer in `answered`, `no_answer`, `offer_failed` and `CancelOffer`."""
    call_id: str
    """The waiting caller's call."""
    queue: str
    """The queue the caller waits in."""
    agents: tuple[str, ...]
    """Extensions to ring at once; the first to answer gets the caller."""
    ring_timeout: float
    """Seconds the model lets it ring before it cancels the offer itself (RINGNOANSWER)."""


@dataclass(frozen=True)
class CancelOffer:
    """Stop ringing (or hang up the just-answered leg of) these agents of an offer."""

    offer_id: int
    """The offer, as in `Offer.offer_id`."""
    agents: tuple[str, ...]
    """The agents whose legs to cancel."""
    reason: Literal["answered_elsewhere", "ring_timeout", "caller_left", "withdrawn"]
    """Why: another agent answered, nobody answered in time, the caller left the queue, or the
    agent became unavailable / the offer is no longer valid (e.g. answered after the caller left)."""


@dataclass(frozen=True)
class Connect:
    """An agent answered: bridge the caller to this agent (after the whisper, if any)."""

    offer_id: int
    """The offer that was answered."""
    call_id: str
    """The caller's call; it has left the queue's waiting line."""
    queue: str
    """The queue (PBX_QUEUE)."""
    agent: str
    """The agent who answered (PBX_AGENT)."""
    wait: float
    """Seconds the caller waited in the queue (PBX_QUEUE_WAIT)."""
    position: int
    """The caller's position when it entered the queue (PBX_QUEUE_POSITION)."""
    ring_time: float
    """Seconds the agent's phone rang before the answer."""


@dataclass(frozen=True)
class Announce:
    """Tell a waiting caller its position and estimated wait (every `announce_every`)."""

    call_id: str
    """The waiting caller."""
    queue: str
    """Its queue."""
    position: int
    """Its position now: 1 = next to be served."""
    estimated_wait: float | None
    """Seconds until an agent is expected to answer (`estimate.estimated_wait`); None when no
    agent serves the queue, so nothing can be promised."""


@dataclass(frozen=True)
class Leave:
    """The caller leaves the queue without an agent: run the `queue` event with this result."""

    call_id: str
    """The caller's call."""
    queue: str
    """The queue it leaves (PBX_QUEUE)."""
    result: QueueResult
    """PBX_RESULT: timeout, full, empty, exit_key or callback."""
    wait: float
    """Seconds it waited (PBX_QUEUE_WAIT; 0 when it was refused at the door)."""
    position: int
    """Its position when it entered (PBX_QUEUE_POSITION; the would-be position if refused)."""


@dataclass(frozen=True)
class Alert:
    """A queue figure crossed its supervisor threshold: send `queue_alert` (once per crossing)."""

    queue: str
    """The queue."""
    figure: AlertFigure
    """Which figure: callers waiting, or the longest wait in seconds."""
    value: float
    """The figure now."""
    threshold: float
    """The configured threshold (`AlertThresholds`)."""
    raised: bool
    """True when it reached the threshold; False when it fell below threshold * clear_ratio."""


@dataclass(frozen=True)
class Journal:
    """One queue journal row (Asterisk queue_log): the service writes it as it is."""

    queue: str
    """The queue name (an agent fact that spans queues is one row per queue, as Asterisk)."""
    event: JournalEvent
    """The Asterisk queue_log event name."""
    call_id: str | None
    """The caller's call (Asterisk's uniqueid); None for agent and member facts ("NONE")."""
    agent: str | None
    """The agent's extension (Asterisk's membername); None when no agent is involved ("NONE")."""
    data: tuple[str, ...] = ()
    """data1..dataN in Asterisk's order for the event (see `journal.py`)."""


Decision = Offer | CancelOffer | Connect | Announce | Leave | Alert | Journal
