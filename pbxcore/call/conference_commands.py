"""Control commands for conference rooms: `conferences`, `conference` (kick, mute, unmute) and
`spy` (a supervisor or consultant on a bridged call: {"call_id", "mode": listen|whisper|consult,
"extension"}; answers once that phone answered).

Shapes (docs/operations.md): `conferences` answers {"conferences": [{"room", "seconds",
"members": [{"member", "call_id", "caller", "moderator", "muted", "role", "seconds"}]}]};
`conference` takes {"op", "room", "member"} (member: its number, call id or caller number)
and answers the member as it is afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pbxcore.call.call import Call
from pbxcore.call.conference import Conferences
from pbxcore.call.spy import SpyError, start_spy
from pbxcore.control.protocol import BAD_ARGS, NOT_FOUND, CommandError
from pbxcore.control.server import ControlServer

OPS = ("kick", "mute", "unmute")


def install(control: ControlServer, conferences: Conferences,
            calls: Mapping[str, Call]) -> None:
    async def rooms(args: Mapping[str, Any]) -> dict[str, Any]:
        return {"conferences": conferences.status()}

    async def member_op(args: Mapping[str, Any]) -> dict[str, Any]:
        op, room_name, ref = args.get("op"), args.get("room"), args.get("member")
        if op not in OPS or not isinstance(room_name, str) or not isinstance(ref, str):
            raise CommandError(BAD_ARGS, f'conference needs "op" ({"|".join(OPS)}), "room" '
                               'and "member"')
        room = conferences.rooms.get(room_name)
        if room is None:
            raise CommandError(NOT_FOUND, f"no conference {room_name!r} (see pbx conferences)")
        member = room.find(ref)
        if member is None:
            raise CommandError(NOT_FOUND, f"no member {ref!r} in conference {room_name!r}")
        if op == "kick":
            room.end_member(member, "kicked", f"kicked from conference {room_name}")
        else:
            member.muted = op == "mute"
        return {"room": room_name, "op": op, **member.view()}

    async def spy(args: Mapping[str, Any]) -> dict[str, Any]:
        call_id, mode, extension = args.get("call_id"), args.get("mode"), args.get("extension")
        if mode not in ("listen", "whisper", "consult") or not isinstance(call_id, str) \
                or not isinstance(extension, str):
            raise CommandError(BAD_ARGS, 'spy needs "call_id", "mode" (listen|whisper|consult) and '
                               '"extension"')
        call = calls.get(call_id)
        if call is None or call.ended.is_set():
            raise CommandError(NOT_FOUND, f"no live call {call_id} (see pbx calls)")
        try:
            started = await start_spy(call, extension, mode)
        except SpyError as exc:
            raise CommandError(NOT_FOUND, str(exc)) from exc
        return {"call_id": call_id, "extension": extension, "mode": mode,
                "supervisor_call_id": started.leg.call_id}

    control.register("conferences", rooms)
    control.register("spy", spy)
    control.register("conference", member_op)
