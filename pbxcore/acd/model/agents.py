"""Agents: one state machine per agent, as a table, plus its queue memberships.

The state names are the public ones (`spec.AGENT_STATES`): logged_out, available, ringing,
talking, wrapup, paused (with a reason).  `TABLE` maps every `(state, event)` pair to the next
state, to `SETTLE` (the idle state the memberships say: logged_out, available or paused), or to
an `Illegal` entry that raises `IllegalTransition` (STYLE: h2's stream.py).

Login, logout, pause and unpause act on memberships (one queue or all of the agent's queues) at
once.  The agent's *state* follows at once while it is idle (logged_out, available, paused) and
after its call while it is busy (ringing, talking, wrapup): a pause pressed while talking shows
`talking`, then `wrapup`, then `paused` (Asterisk's behaviour), and a caller is never cut off.
The agent is not offered calls from a queue it is paused in or logged out of, whatever its state.

Derived idle state (`Agent.settle`): `available` if logged in and not paused in at least one
queue; else `paused` if logged in to any queue; else `logged_out`.

Flags, not states: `registered` (an unregistered phone is not rung) and `direct_calls` (an agent
talking on a direct, non-queue call is not offered a queue call; the snapshot shows it).  Their
events leave the state as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from pbxcore.acd.spec import AgentState

AgentEvent = Literal[
    "login", "logout", "pause", "unpause", "offer", "answer", "no_answer", "reject", "call_end",
    "wrapup_done", "direct_call_start", "direct_call_end", "registered", "unregistered",
]
AGENT_EVENTS: tuple[str, ...] = get_args(AgentEvent)

NO_ANSWER_REASON: Final = "no-answer"  # the pause reason of auto-pause (`autopause_after`)


class AcdError(ValueError):
    """An input the model refuses (unknown agent or queue, agent not logged in, ...)."""


class IllegalTransition(AcdError):
    """An event that the agent's current state does not allow."""


@dataclass(frozen=True)
class Illegal:
    """A table entry: this event is an error in this state."""

    why: str
    """The message of the `IllegalTransition`."""


SETTLE: Final = "settle"  # table entry: the idle state derived from the memberships
Next = AgentState | Literal["settle"] | Illegal

_IDLE: tuple[AgentState, ...] = ("logged_out", "available", "paused")
_BUSY: tuple[AgentState, ...] = ("ringing", "talking", "wrapup")
_NOT_IN = Illegal("the agent is not logged in")
_MEMBERSHIP: tuple[AgentEvent, ...] = ("login", "logout", "pause", "unpause")
_FLAGS: tuple[AgentEvent, ...] = ("direct_call_start", "direct_call_end", "registered",
                                  "unregistered")
_OFFER_OUTCOMES: tuple[AgentEvent, ...] = ("answer", "no_answer", "reject")


def _table() -> dict[tuple[AgentState, AgentEvent], Next]:
    t: dict[tuple[AgentState, AgentEvent], Next] = {}
    for s in _IDLE + _BUSY:
        # Memberships change at once; a busy agent's state follows after the call.
        for e in _MEMBERSHIP:
            t[s, e] = SETTLE if s in _IDLE else s
        for e in _FLAGS:
            t[s, e] = s
        t[s, "offer"] = Illegal(f"only an available agent can be offered a call, not {s}")
        for e in _OFFER_OUTCOMES:
            t[s, e] = Illegal(f"no offer rings a {s} agent")
        t[s, "call_end"] = Illegal(f"a {s} agent has no queue call")
        t[s, "wrapup_done"] = Illegal(f"a {s} agent is not in wrap-up")
    for e in _MEMBERSHIP[1:]:
        t["logged_out", e] = _NOT_IN
    t["available", "offer"] = "ringing"
    t["ringing", "answer"] = "talking"
    t["ringing", "no_answer"] = SETTLE
    t["ringing", "reject"] = SETTLE
    t["talking", "call_end"] = "wrapup"  # wrap-up 0 s: the model fires wrapup_done at once
    t["wrapup", "wrapup_done"] = SETTLE
    return t


TABLE: Final[dict[tuple[AgentState, AgentEvent], Next]] = _table()


@dataclass
class Membership:
    """An agent's live standing in one queue it is a member of."""

    tier: int
    logged_in: bool = False
    paused: str | None = None  # the pause reason while paused in this queue
    since: float = 0.0  # when logged_in last changed
    calls: int = 0  # answered from this queue since login or `reset_counters` (fewest-calls)


@dataclass
class Agent:
    """One agent (an extension): its state, its memberships and what it is doing."""

    extension: str
    state: AgentState = "logged_out"
    reason: str | None = None  # the pause reason while paused
    since: float = 0.0  # when state (or reason) last changed
    memberships: dict[str, Membership] = field(default_factory=dict)
    registered: bool = True
    direct_calls: int = 0
    offer_id: int | None = None  # the live offer ringing this agent
    call_id: str | None = None  # the queue call it is talking on / wrapping up
    call_queue: str | None = None
    answered_at: float = 0.0  # when it answered its current queue call
    wrapup_until: float | None = None
    idle_since: float = 0.0  # since login or the end of its last queue call (longest-idle)
    no_answers: int = 0  # offers in a row it did not answer (autopause_after)
    calls_today: int = 0  # queue calls answered since `reset_counters`
    last_pause_reason: str | None = None

    def fire(self, event: AgentEvent, now: float) -> AgentState:
        """Apply `event` by the table; return the new state (raises `IllegalTransition`)."""
        self.check(event)
        nxt = TABLE[self.state, event]
        assert not isinstance(nxt, Illegal)
        if nxt == SETTLE:
            self.settle(now)
        else:  # a flag event (registered, direct call) keeps the state and its pause reason
            self._become(nxt, self.reason if nxt == self.state else None, now)
        return self.state

    def check(self, event: AgentEvent) -> None:
        """Raise `IllegalTransition` if the table forbids `event` now (before any change)."""
        nxt = TABLE[self.state, event]
        if isinstance(nxt, Illegal):
            raise IllegalTransition(f"agent {self.extension}: {event}: {nxt.why}")

    def settle(self, now: float) -> None:
        """Take the idle state the memberships say (see the module docstring)."""
        logged = [m for m in self.memberships.values() if m.logged_in]
        if any(m.paused is None for m in logged):
            self._become("available", None, now)
        elif logged:
            reasons = [m.paused for m in logged]
            reason = self.last_pause_reason if self.last_pause_reason in reasons else reasons[0]
            self._become("paused", reason, now)
        else:
            self._become("logged_out", None, now)

    def _become(self, state: AgentState, reason: str | None, now: float) -> None:
        if (state, reason) != (self.state, self.reason):
            if self.state == "logged_out" and state != "logged_out":
                self.idle_since = now
            self.state, self.reason, self.since = state, reason, now

    @property
    def busy(self) -> bool:
        """Ringing, talking or wrapping up a queue call."""
        return self.state in _BUSY

    def logged_in(self, queue: str) -> bool:
        m = self.memberships.get(queue)
        return m is not None and m.logged_in

    def eligible(self, queue: str) -> bool:
        """May be offered a call from `queue` now: available, logged in and not paused there,
        registered, not on a direct call."""
        m = self.memberships.get(queue)
        return (self.state == "available" and m is not None and m.logged_in
                and m.paused is None and self.registered and self.direct_calls == 0)
