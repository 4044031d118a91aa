"""Journal decisions: one row per queue fact, Asterisk queue_log's fields in Asterisk's order."""

from __future__ import annotations

from pbxcore.acd.model import Journal, Leave, Offer
from pbxcore.acd.spec import JOURNAL_EVENTS
from tests.unit.acd.helpers import model, of, rows, run_until, spec


def test_a_day_in_the_journal() -> None:
    acd = model(spec(members=("1001", "1002"), strategy="linear", wrapup=5, ring_timeout=10),
                login=False)
    out = acd.login("1001", 0.0) + acd.login("1002", 0.0, queue="q")
    out += acd.join("c1", "q", 1.0, caller="+15551234")
    o = of(out, Offer)[0]
    out += acd.answered(o.offer_id, "1001", 4.0, leg_id="agent-leg")
    out += acd.join("c2", "q", 5.0)  # rings 1002, who does not answer
    out += run_until(acd, 15.0)
    out += acd.pause("1002", 15.0, reason="lunch")  # rings again (retry 0): paused after it
    out += run_until(acd, 64.0)
    out += acd.call_ended("c1", 64.0, "agent")
    out += run_until(acd, 69.0)  # 1001 wraps up, then gets c2
    o = of(out, Offer)[-1]
    out += acd.answered(o.offer_id, "1001", 70.0)
    out += acd.join("c3", "q", 71.0)
    out += acd.leave("c3", 80.0, "callback")
    out += acd.call_ended("c2", 100.0, "caller")
    out += acd.unpause("1002", 101.0, reason="back")
    out += run_until(acd, 110.0)
    out += acd.logout("1002", 120.0)
    assert rows(out) == [
        ("AGENTLOGIN", None, "1001", ("1001",)),
        ("AGENTLOGIN", None, "1002", ("1002",)),
        ("ENTERQUEUE", "c1", None, ("", "+15551234", "1")),
        ("CONNECT", "c1", "1001", ("3", "agent-leg", "3")),
        ("ENTERQUEUE", "c2", None, ("", "", "1")),
        ("RINGNOANSWER", "c2", "1002", ("10000",)),
        ("PAUSE", None, "1002", ("lunch",)),
        ("RINGNOANSWER", "c2", "1002", ("10000",)),
        ("COMPLETEAGENT", "c1", "1001", ("3", "60", "1")),
        ("CONNECT", "c2", "1001", ("65", "", "1")),
        ("ENTERQUEUE", "c3", None, ("", "", "1")),
        ("CALLBACK", "c3", None, ("1", "1", "9")),
        ("COMPLETECALLER", "c2", "1001", ("65", "30", "1")),
        ("UNPAUSE", None, "1002", ("back",)),
        ("AGENTLOGOFF", None, "1002", ("1002", "120")),
    ]
    assert all(j.queue == "q" and j.event in JOURNAL_EVENTS for j in of(out, Journal))
    assert [(d.call_id, d.result) for d in of(out, Leave)] == [("c3", "callback")]
