"""The pure ACD model (issue 8): queues, agents, strategies, estimates and alerts as data.

State in, `now` as an argument, decisions out; `Acd` is the one entry point.
"""

from pbxcore.acd.model.acd import Acd, EndedBy, LeaveReason
from pbxcore.acd.model.agents import AGENT_EVENTS, TABLE, AcdError, IllegalTransition
from pbxcore.acd.model.decisions import (
    Alert,
    Announce,
    CancelOffer,
    Connect,
    Decision,
    Journal,
    Leave,
    Offer,
)
from pbxcore.acd.model.snapshot import AgentSnapshot, QueueSnapshot, Snapshot

__all__ = [
    "AGENT_EVENTS", "TABLE", "Acd", "AcdError", "AgentSnapshot", "Alert", "Announce",
    "CancelOffer", "Connect", "Decision", "EndedBy", "IllegalTransition", "Journal", "Leave",
    "LeaveReason", "Offer", "QueueSnapshot", "Snapshot",
]
