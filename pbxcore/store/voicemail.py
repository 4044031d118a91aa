"""What the store keeps of voicemail: the index of the messages left in each box.

A message is a WAV file under the recordings directory (``recording``, relative to it, the
``PBX_RECORDING`` of the `voicemail` event) and one row of table ``voicemail``: box, when, who
left it (caller number and name, caller-controlled text, scrubbed like every stored string),
its length and its status.  ``new`` until an owner listened to it (``heard``), ``deleted`` when
removed (the row stays, the WAV goes: the caller of the store removes the file).  Shared
validation for the three backends; a bad value is our own bug: ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pbxcore.store.values import iso, scrub, utc

VOICEMAIL_STATUSES: tuple[str, ...] = ("new", "heard", "deleted")
VOICEMAIL_COLUMNS = "id, box, time, caller, caller_name, seconds, recording, status, call_id, node"


@dataclass(frozen=True)
class VoicemailMessage:
    """One message of a box (id 0 until the store assigned one)."""

    box: str
    time: datetime  # UTC, when the message was left
    seconds: float  # length of the recording
    recording: str  # relative to the recordings directory
    caller: str = ""
    caller_name: str = ""
    status: str = "new"  # VOICEMAIL_STATUSES
    call_id: str = ""  # the call that left it (PBX_CALL_ID)
    node: str | None = None
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "box": self.box, "time": iso(self.time), "caller": self.caller,
                "caller_name": self.caller_name, "seconds": round(self.seconds, 2),
                "recording": self.recording, "status": self.status, "call_id": self.call_id,
                "node": self.node}


def checked_message(m: VoicemailMessage) -> VoicemailMessage:
    if not m.box:
        raise ValueError("voicemail message without a box")
    if m.status not in VOICEMAIL_STATUSES:
        raise ValueError(f"voicemail status {m.status!r} is not one of {VOICEMAIL_STATUSES}")
    if m.seconds < 0:
        raise ValueError("voicemail message with negative seconds")
    return replace(m, time=utc(m.time), box=scrub(m.box), caller=scrub(m.caller),
                   caller_name=scrub(m.caller_name), recording=scrub(m.recording),
                   call_id=scrub(m.call_id))


def checked_status(status: str) -> str:
    if status not in VOICEMAIL_STATUSES:
        raise ValueError(f"voicemail status {status!r} is not one of {VOICEMAIL_STATUSES}")
    return status


def message_row(m: VoicemailMessage, *, text_times: bool) -> tuple[Any, ...]:
    """The INSERT values, without id (VOICEMAIL_COLUMNS minus its first)."""
    return (m.box, iso(m.time) if text_times else m.time, m.caller, m.caller_name,
            float(m.seconds), m.recording, m.status, m.call_id, m.node)


def message_from_row(row: tuple[Any, ...]) -> VoicemailMessage:
    id_, box, time, caller, caller_name, seconds, recording, status, call_id, node = row
    when = datetime.fromisoformat(time).astimezone(UTC) if isinstance(time, str) else utc(time)
    return VoicemailMessage(box=box, time=when, seconds=float(seconds), recording=recording,
                            caller=caller, caller_name=caller_name, status=status,
                            call_id=call_id, node=node, id=int(id_))


def message_filter(box: str, status: str | None, mark: str) -> tuple[str, tuple[Any, ...]]:
    """WHERE clause: one box, one status or (None) every status but deleted."""
    if status is None:
        return f"WHERE box = {mark} AND status <> 'deleted'", (box,)
    return f"WHERE box = {mark} AND status = {mark}", (box, checked_status(status))
