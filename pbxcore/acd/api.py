"""The seam between a call and the ACD service: what `Call` asks of it, and what the control
socket (`pbx queues`, `pbx agents`, `pbx agent`) will read.

`CallDeps.acd` holds an object meeting :class:`AcdControl`, or None while no service runs; the
call layer then answers every `queue` action with the `empty` outcome and traces "no ACD
service", so scripts and their fallbacks behave exactly as with a queue nobody is logged in to.
The service (built on the pure model in pbxcore/acd/model and the existing dialer and bridge)
owns hold music, announcements, offers, whisper and the bridge; it reports the caller's visit
with ``call.carry(queue_fields(...))`` so every later event carries PBX_QUEUE*, and it writes
the journal, the CDR queue segment and agent events through the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pbxcore.acd.spec import QueueSpec
from pbxcore.verbs.base import Outcome

if TYPE_CHECKING:  # call.py imports this module; the service gets the real Call
    from pbxcore.call.call import Call

AgentOp = Literal["login", "logout", "pause", "unpause"]
Via = Literal["phone", "script", "cli"]  # where an agent operation came from (for the journal)


class AgentError(ValueError):
    """An agent operation that cannot be done (unknown agent, not a member, not logged in);
    the message says why and is shown to whoever asked (script trace, CLI)."""


class AcdControl(Protocol):
    """The ACD service as calls and the control socket see it."""

    async def enqueue(self, call: Call, queue: QueueSpec, *, priority: int,
                      timeout: float | None, exit_key: str, announce: tuple[str, ...] | None,
                      whisper: str | None) -> Outcome | None:
        """Hold `call` (answered) in `queue` until an agent answers: then bridge them and
        return None when the call is over; or return the `queue` Outcome (result one of
        spec.QUEUE_RESULTS, digits the exit key, extra the QUEUE_FIELDS).  Cancelled when the
        caller hangs up (journal ABANDON).  timeout None: the queue's max_wait; announce and
        whisper None: the queue's own."""

    async def agent_control(self, op: AgentOp, extension: str, *, queue: str | None,
                            reason: str | None, via: Via) -> None:
        """Change an agent's state in `queue`, or in every queue they are a member of;
        AgentError when it cannot be done."""

    def direct_call(self, extension: str, active: bool) -> None:
        """An agent's phone started (True) or ended (False) a call the ACD did not offer; it is
        not offered queue calls meanwhile.  Ignored for extensions that are no agent."""

    def queue_status(self) -> Sequence[Mapping[str, Any]]:
        """Per queue, JSON-able: what `pbx queues --json` prints (waiting, longest wait, agents
        by state, SL today, alert state)."""

    def agent_status(self) -> Sequence[Mapping[str, Any]]:
        """Per agent, JSON-able: what `pbx agents --json` prints (state, reason, since, calls
        today, queues)."""
