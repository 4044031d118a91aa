"""What a queue is, as data: the contract between the configuration, the ACD model and the service.

Pure: no I/O, no clock.  `pbxcore.config` builds these from `[[queues]]` in pbx.toml; the model in
`pbxcore.acd` takes them as they are; the service that drives the model reads the few media fields
(hold music, whisper, alert program).  Names here are the public ones shown everywhere (CLI, journal,
docs): keep them as written.

Tiers (members' optional ``"EXT:TIER"``, Asterisk's penalty, FreeSWITCH's tier level): a lower tier
is preferred.  In a queue without overflow rules every tier is eligible and the strategy picks among
the lowest tier that has an available agent (Asterisk's penalty behaviour).  In a queue with overflow
rules a waiting caller starts at level 1 and is offered only to members whose tier is at most its
level; each rule ``after=S tier=N`` raises that caller's level to N once it has waited S seconds, so
the next tier is offered the call *too* and the caller keeps its place in line (FreeSWITCH
mod_callcenter's tier-rule-wait-second, Asterisk's queuerules.conf penalty changes, without
re-entering a queue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Strategy = Literal["ringall", "longest-idle", "round-robin", "fewest-calls", "linear", "random"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
DEFAULT_STRATEGY: Strategy = "longest-idle"

AgentState = Literal["logged_out", "available", "ringing", "talking", "wrapup", "paused"]
AGENT_STATES: tuple[str, ...] = get_args(AgentState)

# PBX_RESULT of the `queue` event: why the caller left the queue without an agent.
QueueResult = Literal["timeout", "full", "empty", "exit_key", "callback"]
QUEUE_RESULTS: tuple[str, ...] = get_args(QueueResult)

# `empty` policy: may a caller join (and stay) while no agent is logged in?
EmptyPolicy = Literal["join", "leave"]
EMPTY_POLICIES: tuple[str, ...] = get_args(EmptyPolicy)

Announcement = Literal["position", "wait"]
ANNOUNCEMENTS: tuple[str, ...] = get_args(Announcement)

# Queue journal event names: Asterisk's queue_log names, so reporting habits carry over.  The
# last group is ours where Asterisk has no name (shutdown, crash recovery, callbacks).
JournalEvent = Literal[
    "ENTERQUEUE", "CONNECT", "COMPLETECALLER", "COMPLETEAGENT", "ABANDON", "EXITWITHTIMEOUT",
    "EXITWITHKEY", "EXITEMPTY", "FULL", "RINGNOANSWER", "RINGCANCELED", "PAUSE", "UNPAUSE",
    "ADDMEMBER", "REMOVEMEMBER", "AGENTLOGIN", "AGENTLOGOFF", "TRANSFER",
    "SHUTDOWN", "INTERRUPTED", "CALLBACK",
    "CALLBACKREQUEST", "CALLBACKATTEMPT", "CALLBACKCONNECT", "CALLBACKFAILED",
]
JOURNAL_EVENTS: tuple[str, ...] = get_args(JournalEvent)


@dataclass(frozen=True)
class Member:
    """One agent of a queue."""

    extension: str  # a [[users]] extension
    tier: int = 1  # "1004:2" -> 2; lower tiers are preferred (see the module docstring)


@dataclass(frozen=True)
class OverflowRule:
    """After `after` seconds of waiting, members up to `tier` are offered the caller too."""

    after: float  # seconds the caller has waited in this queue
    tier: int  # the caller's new level: members with tier <= this become eligible


@dataclass(frozen=True)
class AlertThresholds:
    """When a supervisor is alerted (`queue_alert`); None = no alert on that figure.

    Hysteresis: an alert is raised once when a figure reaches its threshold and cleared once when
    it falls below ``threshold * clear_ratio``; nothing is sent in between."""

    waiting: int | None = None  # callers waiting
    longest_wait: float | None = None  # seconds the longest-waiting caller has waited
    clear_ratio: float = 0.8


@dataclass(frozen=True)
class QueueSpec:
    """One `[[queues]]` entry (docs/configuration.md)."""

    name: str
    strategy: Strategy = DEFAULT_STRATEGY
    members: tuple[Member, ...] = ()
    ring_timeout: float = 15.0  # seconds an offer rings an agent before RINGNOANSWER
    retry: float = 5.0  # seconds before the next offer after nobody answered
    wrapup: float = 0.0  # seconds after a queue call before the agent is offered another
    max_wait: float | None = None  # seconds; then the caller leaves with `timeout`
    max_len: int | None = None  # callers waiting; one more leaves at once with `full`
    empty: EmptyPolicy = "join"
    hold_music: str = "moh"  # a prompt name (sounds/<lang>/<name>.wav)
    announce_every: float | None = None  # seconds between position/wait announcements
    announce: tuple[Announcement, ...] = ("position", "wait")
    service_level: float = 20.0  # seconds: answered within this counts for SL
    autopause_after: int = 0  # no-answers in a row before the agent is paused (0 = never)
    overflow: tuple[OverflowRule, ...] = ()
    alert: AlertThresholds = field(default_factory=AlertThresholds)
    alert_program: str | None = None  # path of the program that gets `queue_alert` events
    whisper: str | None = None  # prompt played to the agent only, before the bridge
    callback_key: str | None = None  # the key that asks for a callback (keeps the place)
    callback_retries: int = 3  # attempts after the first when the customer does not answer
    callback_retry_delay: float = 60.0  # seconds before the 1st retry; doubled for each next
    callback_allow: tuple[str, ...] | None = None  # regexes of numbers a callback may dial;
    # None: the switch's extensions and numbers a configured trunk routes

    def callback_delay(self, attempts: int) -> float:
        """Seconds before the next callback attempt after `attempts` unanswered ones (>= 1):
        exponential back-off, so a busy customer is not called every minute."""
        return self.callback_retry_delay * float(2 ** max(attempts - 1, 0))

    def member(self, extension: str) -> Member | None:
        return next((m for m in self.members if m.extension == extension), None)
