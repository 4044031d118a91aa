"""Events that are flags, not states (a phone unregistering, a direct call) leave a paused
agent paused *with its reason*: the wallboard and a restart both read it."""

from __future__ import annotations

from pbxcore.acd.model import Acd
from pbxcore.acd.spec import Member, QueueSpec


def test_unregistering_and_direct_calls_keep_the_pause_reason() -> None:
    acd = Acd([QueueSpec("q", members=(Member("1002"),))], 0.0)
    acd.login("1002", 1.0)
    acd.pause("1002", 2.0, None, "lunch")
    acd.registered("1002", 3.0, False)
    assert acd.agent_states()["1002"] == ("paused", "lunch")
    acd.direct_call("1002", 4.0, True)
    acd.direct_call("1002", 5.0, False)
    acd.registered("1002", 6.0, True)
    assert acd.agent_states()["1002"] == ("paused", "lunch")
