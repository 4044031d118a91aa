"""A third phone on a bridged call: a supervisor (`pbx spy CALL_ID --listen|--whisper EXT`,
Asterisk's ChanSpy) or a consultant the agent brings in (`pbx consult CALL_ID EXT`, or `*3EXT#`
keyed on the agent's phone while bridged).

The switch rings the supervisor's phone (every registered binding of EXT is not forked here:
the most recent one rings, for `spy_timeout` = 30 s); when it answers, the call's two-party
`Bridge` is turned into a room (`pbxcore.call.conference.Room`): caller and agent become its
parties, so they go on hearing each other, mixed instead of relayed, and the supervisor joins as
`listen` (hears both, heard by nobody) or `whisper` (hears both, heard by the agent only: the
coach); a consultant joins as a party (all three hear each other, with the join chime) and gets
the agent's screen pop (`[consult] caller name`, X-Pbx-Call-Id, X-Pbx-Var-*).  When the
supervisor (or consultant) hangs up, the room is undone and the bridge relays again; when the
call ends, the supervisor's leg is hung up.  While a supervisor is on it a call's recording
(`record_call`) and hold music pause (mixing replaces the relay the recorder listens to).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pbxcore.acd.offers import screen_pop
from pbxcore.call.conference import Member, Room
from pbxcore.call.outbound import OutboundLeg, Target
from pbxcore.media.session import MediaSession
from pbxcore.sip.sdp import build_offer

if TYPE_CHECKING:
    from pbxcore.call.call import Call

log = logging.getLogger("pbxcore.spy")

SpyMode = Literal["listen", "whisper", "consult"]
RING_SECONDS = 30.0
CONSULT_CODE = re.compile(r"\*3([0-9]{1,15})#")
"""The agent's feature code during a bridge: *3, the consultant's extension, #."""


class SpyError(ValueError):
    """The spy cannot start: the message says why (shown by the CLI)."""


@dataclass(eq=False)
class Spy:
    """One supervisor on one call."""

    call: Call
    extension: str
    mode: SpyMode
    leg: OutboundLeg
    room: Room | None = None
    member: Member | None = None
    task: asyncio.Task[None] | None = None


async def start_spy(call: Call, extension: str, mode: SpyMode) -> Spy:
    """Ring `extension` and, once it answers, put it on `call`'s bridge; returns when it is on
    (the spy then runs until either side ends).  SpyError when it cannot."""
    deps = call.deps
    if call.bridge is None or call.ended.is_set():
        raise SpyError(f"call {call.info.call_id} is not bridged (see pbx calls)")
    if deps.config.user(extension) is None:
        raise SpyError(f"{extension!r} is not a [[users]] extension")
    bindings = sorted(deps.registrar.bindings(extension), key=lambda b: b.expires_at,
                      reverse=True)
    if not bindings:
        raise SpyError(f"{extension} is not registered")
    target = Target(extension, bindings[0].contact, bindings[0].source)
    media = await MediaSession.open(deps.media_host, deps.ports, deps.pacer)
    offer = build_offer(deps.media_host, media.local_port, secrets.randbits(31), 1)
    # The same screen pop as the agent's (the seed: "a consultant who sees the same client
    # data"): [MODE] caller name, X-Pbx-Call-Id and the call's variables as X-Pbx-Var-*.
    display, headers = screen_pop(call, mode)
    leg = OutboundLeg(deps.legs, target, media, offer, caller=call.info.caller or "anonymous",
                      caller_name=display,
                      extra_headers=[h for h in headers if h[0] != "X-Pbx-Queue"])
    leg.start()
    try:
        result = await asyncio.wait_for(asyncio.shield(leg.result), RING_SECONDS)
    except TimeoutError:
        result = None
    except BaseException:  # cancelled while it rang (the call ended): CANCEL the phone
        await asyncio.shield(_release(call, leg))
        raise
    if result is None or result.status != "answered" or call.bridge is None:
        await _release(call, leg)
        why = "the call is no longer bridged" if result and result.status == "answered" \
            else (result.status if result else "no answer")
        raise SpyError(f"{extension}: {why}")
    spy = Spy(call, extension, mode, leg)
    _attach(spy)
    spies = deps.conferences.spies
    spies.add(spy)
    spy.task = asyncio.ensure_future(_run(spy))
    spy.task.add_done_callback(lambda _: spies.discard(spy))
    return spy


def _attach(spy: Spy) -> None:
    """Put the answered third party on the call: the call's room, made from its bridge by the
    first third party (a second supervisor or a consultant joins the same room)."""
    call, bridge = spy.call, spy.call.bridge
    assert bridge is not None
    rooms = call.deps.conferences.call_rooms
    room = rooms.get(call.info.call_id)
    if room is None:
        bridge.stop()  # no relay: the room mixes from now on
        room = rooms[call.info.call_id] = Room(f"call:{call.info.call_id}", call.deps.pacer,
                                               lambda room: None)
        room.add(Member(room.new_number(), call.info.call_id, call.info.caller, bridge.a),
                 chime=False)
        room.add(Member(room.new_number(), call.info.call_id, "agent", bridge.b), chime=False)
    agent = next((m for m in room.members if m.session is bridge.b), None)
    consult = spy.mode == "consult"  # everybody hears a consultant join, and leave
    spy.member = Member(room.new_number(), spy.leg.call_id, spy.extension, spy.leg.media,
                        role="party" if consult else spy.mode,  # type: ignore[arg-type]
                        coach_of=agent if spy.mode == "whisper" else None)
    room.add(spy.member, chime=consult)
    spy.room = room
    call.note("note", {"spy": spy.extension, "mode": spy.mode})
    log.info("call %s: %s joined as %s", call.info.call_id, spy.extension, spy.mode)


async def _run(spy: Spy) -> None:
    call = spy.call
    ended = asyncio.ensure_future(call.ended.wait())
    gone = asyncio.ensure_future(spy.leg.ended.wait())
    try:
        await asyncio.wait({ended, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        gone.cancel()
        _detach(spy)
        call.note("note", {"spy_left": spy.extension})
        await _release(call, spy.leg)


def _detach(spy: Spy) -> None:
    """Take the third party off; the last one gone, caller and agent go back on the relay."""
    call, room, spy.room = spy.call, spy.room, None
    if room is None or spy.member is None:
        return
    room.remove(spy.member, chime=spy.mode == "consult")
    bridge = call.bridge
    own = {bridge.a, bridge.b} if bridge is not None else set()
    if any(m.session not in own for m in room.members) and not call.ended.is_set():
        return  # another supervisor or consultant is still on
    for member in list(room.members):
        room.remove(member, chime=False)
    call.deps.conferences.call_rooms.pop(call.info.call_id, None)
    if bridge is not None and not call.ended.is_set():
        bridge.start()  # caller and agent back on the relay


async def _release(call: Call, leg: OutboundLeg) -> None:
    if not leg.ended.is_set():
        leg.hangup()
    call.deps.legs.forget_leg(leg)
    await leg.media.close()


async def consult_keys(call: Call, leg: OutboundLeg) -> None:
    """The agent's feature code while bridged: `*3EXT#` rings EXT as a consultant (the room
    of caller, agent and consultant); a failure is traced, the call goes on."""
    keys = ""
    leg.media.flush_digits()
    while True:
        keys = (keys + await leg.media.digits.get())[-20:]
        match = CONSULT_CODE.search(keys)
        if match is None:
            continue
        keys = ""
        try:
            await start_spy(call, match.group(1), "consult")
        except SpyError as exc:
            call.note("error", {"consult": match.group(1), "error": str(exc)})
            log.info("call %s: consult %s failed: %s", call.info.call_id, match.group(1), exc)


def consult_feature(call: Call, leg: OutboundLeg) -> asyncio.Task[None]:
    """Watch the agent's keys for `*3EXT#` while bridged; cancel the task when the bridge ends."""
    return asyncio.ensure_future(consult_keys(call, leg))
