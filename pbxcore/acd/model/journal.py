"""Queue journal rows, with Asterisk queue_log's data fields in Asterisk's order.

Times are whole seconds except RINGNOANSWER/RINGCANCELED (milliseconds, as Asterisk).  Events
Asterisk has no fields for (ours) are marked *ours*.

| event | data1 | data2 | data3 | data4 | data5 |
|---|---|---|---|---|---|
| ENTERQUEUE | url ("") | caller id | position | | |
| CONNECT | holdtime | agent leg's call id | ringtime | | |
| COMPLETECALLER, COMPLETEAGENT | holdtime | calltime | origposition | | |
| ABANDON, EXITWITHTIMEOUT, EXITEMPTY | position | origposition | waittime | | |
| EXITWITHKEY | key | position | origposition | waittime | |
| FULL, CALLBACK (*ours*) | position | origposition | waittime | | |
| RINGNOANSWER, RINGCANCELED | ringtime (ms) | | | | |
| PAUSE, UNPAUSE | reason | | | | |
| ADDMEMBER, REMOVEMEMBER | tier (*ours*) | | | | |
| AGENTLOGIN | agent | | | | |
| AGENTLOGOFF | agent | logintime | | | |
| TRANSFER | extension | context | holdtime | calltime | origposition |
| SHUTDOWN (*ours*), waiting caller | position | origposition | waittime | | |
| SHUTDOWN (*ours*), connected call | holdtime | calltime | origposition | | |

A refused join (FULL, EXITEMPTY at the door) has position = origposition = the would-be
position and waittime 0.  Rows about an agent alone have call_id None ("NONE" in Asterisk).
"""

from __future__ import annotations

from pbxcore.acd.model.decisions import Journal
from pbxcore.acd.spec import JournalEvent


def secs(x: float) -> str:
    return str(round(x))


def ms(x: float) -> str:
    return str(round(x * 1000))


def waited(queue: str, event: JournalEvent, call_id: str, position: int, orig: int,
           wait: float, agent: str | None = None) -> Journal:
    """ABANDON, EXITWITHTIMEOUT, EXITEMPTY, FULL, CALLBACK, SHUTDOWN of a waiting caller."""
    return Journal(queue, event, call_id, agent, (str(position), str(orig), secs(wait)))


def completed(queue: str, event: JournalEvent, call_id: str, agent: str, hold: float,
              talk: float, orig: int) -> Journal:
    """COMPLETECALLER, COMPLETEAGENT, SHUTDOWN of a connected call."""
    return Journal(queue, event, call_id, agent, (secs(hold), secs(talk), str(orig)))


def member(queue: str, event: JournalEvent, agent: str, *data: str) -> Journal:
    """Agent facts: PAUSE, UNPAUSE, ADDMEMBER, REMOVEMEMBER, AGENTLOGIN, AGENTLOGOFF."""
    return Journal(queue, event, None, agent, data)
