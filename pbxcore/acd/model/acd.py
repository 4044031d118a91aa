"""The ACD model: queues of callers, agents, and the decisions that join them.

Theory of operation: the asyncio service owns one `Acd`.  It feeds it every input with the time
(`now`, seconds, its monotonic clock), carries out the returned decisions in order (`decisions`),
sleeps until `next_deadline()` and then calls `tick(now)`.  The model reads no clock, does no I/O
and draws random numbers only from the `random.Random` it is given, so every test steps time.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

from pbxcore.acd.model.decisions import Decision
from pbxcore.acd.model.snapshot import Snapshot
from pbxcore.acd.spec import QueueSpec

LeaveReason = Literal["abandon", "exit_key", "callback", "timeout"]
EndedBy = Literal["caller", "agent"]


class Acd:
    """Every queue and agent of the switch."""

    def __init__(self, specs: Iterable[QueueSpec], now: float,
                 rng: random.Random | None = None) -> None:
        """Queues from `specs`; every member starts logged_out and registered.  `rng` serves the
        `random` strategy (a seeded `random.Random(0)` when None, so runs are reproducible)."""
        raise NotImplementedError

    # -- configuration ---------------------------------------------------------------------

    def reconfigure(self, specs: Iterable[QueueSpec], now: float) -> list[Decision]:
        """Hot reload.  Waiting callers keep their place; added members are ADDMEMBER (logged
        out), removed ones REMOVEMEMBER (an agent finishes its current call first); a removed
        queue's callers leave with `empty`.  Strategy, timeouts and the rest apply at once."""
        raise NotImplementedError

    # -- callers -----------------------------------------------------------------------------

    def join(self, call_id: str, queue: str, now: float, *, priority: int = 0,
             timeout: float | None = None, announce: bool = True,
             caller: str = "") -> list[Decision]:
        """A caller enters `queue` (the `queue` action).  Higher `priority` is served first,
        FIFO within a priority.  It leaves with `timeout` after min(`timeout`, `max_wait`)
        seconds.  Refused at once with Leave `full` (FULL) past `max_len`, or `empty`
        (EXITEMPTY) when the queue's `empty` policy is `leave` and no member is logged in.
        `announce=False` (the action's `announce=none`) sends it no Announce.  `caller` is the
        caller's number for the ENTERQUEUE row."""
        raise NotImplementedError

    def leave(self, call_id: str, now: float, reason: LeaveReason,
              key: str = "") -> list[Decision]:
        """The caller leaves while waiting: `abandon` (it hung up: ABANDON, no Leave), `exit_key`
        (pressed `key`: EXITWITHKEY), `callback` (CALLBACK) or `timeout`.  Its live offer is
        cancelled (RINGCANCELED).  An unknown or already served call returns []."""
        raise NotImplementedError

    # -- offers ------------------------------------------------------------------------------

    def answered(self, offer_id: int, agent: str, now: float) -> list[Decision]:
        """`agent` answered `offer_id`: Connect (CONNECT), the other agents' legs cancelled.  If
        the offer is gone (the caller left, it timed out) the answer is refused with
        CancelOffer(withdrawn) for that agent's leg."""
        raise NotImplementedError

    def no_answer(self, offer_id: int, agent: str, now: float,
                  rejected: bool = False) -> list[Decision]:
        """`agent` did not answer (or `rejected`, declined with 486/603): RINGNOANSWER; counts
        toward `autopause_after`.  When no agent of the offer is left ringing, the caller waits
        `retry` seconds before its next offer.  Unknown offers or agents are ignored."""
        raise NotImplementedError

    def offer_failed(self, offer_id: int, agent: str, now: float) -> list[Decision]:
        """The agent's leg could not be set up (unreachable, error response): as `no_answer`
        but not counted toward auto-pause."""
        raise NotImplementedError

    def call_ended(self, call_id: str, now: float, by: EndedBy) -> list[Decision]:
        """A connected queue call ended, hung up by the caller (COMPLETECALLER) or the agent
        (COMPLETEAGENT).  The agent goes to wrap-up (`wrapup` s) or available at once."""
        raise NotImplementedError

    def transfer(self, call_id: str, now: float, target: str,
                 context: str = "") -> list[Decision]:
        """The agent transferred the caller to `target` (TRANSFER); the agent's part of the
        call is over as with `call_ended`."""
        raise NotImplementedError

    # -- agents ------------------------------------------------------------------------------

    def login(self, agent: str, now: float, queue: str | None = None) -> list[Decision]:
        """Log in to `queue` or to all the agent's queues (AGENTLOGIN per queue).  Raises
        `AcdError` for an unknown agent or a queue it is not a member of."""
        raise NotImplementedError

    def logout(self, agent: str, now: float, queue: str | None = None) -> list[Decision]:
        """Log out of `queue` or of all (AGENTLOGOFF per queue; a busy agent's state follows
        after its call).  May empty a queue whose policy is `leave` (EXITEMPTY)."""
        raise NotImplementedError

    def pause(self, agent: str, now: float, queue: str | None = None,
              reason: str = "") -> list[Decision]:
        """Pause in `queue` or in all its logged-in queues (PAUSE with reason); a busy agent
        shows `paused` after its call and wrap-up."""
        raise NotImplementedError

    def unpause(self, agent: str, now: float, queue: str | None = None,
                reason: str = "") -> list[Decision]:
        """Unpause (UNPAUSE with reason); the agent may be offered a call at once."""
        raise NotImplementedError

    def registered(self, agent: str, now: float, registered: bool) -> list[Decision]:
        """The agent's phone registered (True) or lost its last binding (False): an unregistered
        agent is not rung, and does not count as logged in for the `empty` policy."""
        raise NotImplementedError

    def direct_call(self, agent: str, now: float, active: bool) -> list[Decision]:
        """The agent started (True) or ended (False) a direct, non-queue call; while on one it
        is not offered queue calls.  Calls nest (two direct calls need two ends)."""
        raise NotImplementedError

    # -- time --------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Decision]:
        """Everything due by `now`: timeouts, ring timeouts, retries, wrap-up ends, overflow
        rules, announcements, alert re-evaluation, and the offers they allow."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """When `tick` has something to do next; None when nothing is scheduled."""
        raise NotImplementedError

    def shutdown(self, now: float) -> list[Decision]:
        """The switch stops: every live offer is cancelled, every waiting caller and connected
        call gets a SHUTDOWN row; the model is empty afterwards (agents keep their state)."""
        raise NotImplementedError

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        """Every queue and agent as `pbx queues` / `pbx agents` show them."""
        raise NotImplementedError

    def reset_counters(self) -> None:
        """Start a new day: zero answered/abandoned/SL counters and agents' call counts (the
        service calls this at local midnight; the model has no wall clock)."""
        raise NotImplementedError
