"""Conference rooms: `conference ROOM`, `pbx conferences`, `pbx conference kick|mute|unmute`,
and a supervisor listening to (or coaching) a bridged call.

Theory of operation.  A `Room` is one more stream on the shared 20 ms `Pacer`: its members'
media sessions stop sending on their own (`relaying`, as in a bridge) and hand every received
packet to the room (`MediaSession.forward`), which keeps the newest few frames per member.  On
each tick the room takes one frame per member, mixes them (`pbxcore.rtp.mix`: everybody hears
the sum of the others, never itself), adds the join/leave tone if one is sounding, and sends each
member its frame with `MediaSession.send_frame` — in that member's codec, so PCMU and PCMA
callers share a room.  Listeners who said nothing hear the same total: it is encoded once per
codec and tick.  Roles: a `party` speaks to the room; a muted party and a `listen` member (the
supervisor) speak to nobody; a `whisper` member (the coach) is heard by one member only (the
agent), and hears everybody.

A member leaves when its call ends (the call's task is cancelled), when kicked (`pbx conference
kick`: the switch hangs the call up) or when the room ends for it: a member that joined with
`end=yes` is hung up when the last moderator leaves (ConfBridge's `end_marked`).  Either way the
call is over and the script gets its `hangup` event, carrying PBX_CONFERENCE and
PBX_CONFERENCE_RESULT (left, kicked, ended).  A room exists while it has members.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pbxcore.media.pacer import Pacer
from pbxcore.media.session import MediaSession
from pbxcore.rtp.mix import FRAME, Mixer, decode, encode
from pbxcore.rtp.packet import RtpPacket
from pbxcore.rtp.tones import silence, tone
from pbxcore.script.events import conference_fields
from pbxcore.verbs.base import Outcome

if TYPE_CHECKING:
    from pbxcore.call.call import Call

log = logging.getLogger("pbxcore.conference")

Role = Literal["party", "listen", "whisper"]
Why = Literal["left", "kicked", "ended"]
INBOX = 3
"""Frames kept per member between ticks (60 ms): absorbs arrival jitter against the pacer's
phase; older frames are dropped so a burst cannot build up delay."""
PIN_TRIES = 3


def _frames(pcm16: bytes) -> tuple[tuple[int, ...], ...]:
    samples = array("h", pcm16)
    return tuple(tuple(samples[i:i + FRAME]) for i in range(0, len(samples) - FRAME + 1, FRAME))


# Rising two-note chime on join, falling on leave (ConfBridge plays enter/leave sounds); quiet
# enough not to cover a speaker, 280 ms in all.
JOIN_TONE = _frames(tone(660, 120, amplitude=3000) + silence(40) + tone(880, 120, amplitude=3000))
LEAVE_TONE = _frames(tone(880, 120, amplitude=3000) + silence(40) + tone(660, 120, amplitude=3000))


@dataclass(eq=False)
class Member:
    """One call in a room."""

    number: int
    """1, 2, ... in the order of joining (what `pbx conference kick ROOM MEMBER` takes)."""
    call_id: str
    caller: str
    session: MediaSession
    moderator: bool = False
    muted: bool = False
    end: bool = False
    role: Role = "party"
    coach_of: Member | None = None  # whisper: the only member who hears this one
    joined: float = field(default_factory=time.time)
    inbox: deque[bytes] = field(default_factory=lambda: deque(maxlen=INBOX))
    done: asyncio.Future[Why] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    hangup: Callable[[str], None] | None = None  # how the room ends this member's call

    @property
    def speaks(self) -> bool:
        return self.role == "party" and not self.muted

    def view(self) -> dict[str, Any]:
        return {"member": self.number, "call_id": self.call_id, "caller": self.caller,
                "moderator": self.moderator, "muted": self.muted, "role": self.role,
                "seconds": round(time.time() - self.joined, 1)}

    def finish(self, why: Why) -> None:
        if not self.done.done():
            self.done.set_result(why)


class Room:
    """The members of one conference and their mix, ticked by the pacer while not empty."""

    def __init__(self, name: str, pacer: Pacer, on_empty: Callable[[Room], None], *,
                 chimes: bool = True) -> None:
        self.name = name
        self.chimes = chimes  # False: a supervisor's room (nobody may hear them join)
        self.members: list[Member] = []
        self.created = time.time()
        self._pacer = pacer
        self._on_empty = on_empty
        self._mixer = Mixer()
        self._tone: deque[tuple[int, ...]] = deque()
        self._next = 1
        self.ticks = 0

    def add(self, member: Member, *, chime: bool = True) -> None:
        session = member.session
        session.stop_playing()
        session.set_background(None)
        session.relaying = True  # the room sends for it from now on
        session.forward = self._receiver(member)
        self.members.append(member)
        if chime:  # not for a supervisor: nobody may hear them join
            self._sound(JOIN_TONE)
        if len(self.members) == 1:
            self._pacer.register(self)

    def new_number(self) -> int:
        number, self._next = self._next, self._next + 1
        return number

    def remove(self, member: Member, why: Why = "left", *, chime: bool = True) -> None:
        if member not in self.members:
            return
        self.members.remove(member)
        member.session.forward = None
        member.session.relaying = False
        member.finish(why)
        for other in self.members:
            if other.coach_of is member:  # a coach with nobody left to coach hears on
                other.coach_of, other.role = None, "listen"
        if not self.members:
            self._pacer.unregister(self)
            self._on_empty(self)
            return
        if chime:
            self._sound(LEAVE_TONE)
        if member.moderator and not any(m.moderator for m in self.members):
            # ConfBridge end_marked: the last moderator left; members who asked to leave
            # with them are hung up (the others stay).
            for other in [m for m in self.members if m.end]:
                self.end_member(other, "ended", f"conference {self.name}: last moderator left")

    def end_member(self, member: Member, why: Why, cause: str) -> None:
        """Take `member` out and hang its call up (kick, room ended)."""
        self.remove(member, why)
        if member.hangup is not None:
            member.hangup(cause)

    def find(self, ref: str) -> Member | None:
        """A member by number, call id or caller number (the first such caller)."""
        for m in self.members:
            if ref in (str(m.number), m.call_id):
                return m
        return next((m for m in self.members if m.caller == ref), None)

    def view(self) -> dict[str, Any]:
        return {"room": self.name, "members": [m.view() for m in self.members],
                "seconds": round(time.time() - self.created, 1)}

    def _sound(self, frames: tuple[tuple[int, ...], ...]) -> None:
        if not self.chimes:
            return
        self._tone.clear()
        self._tone.extend(frames)

    def _receiver(self, member: Member) -> Callable[[MediaSession, RtpPacket, bool], None]:
        inbox = member.inbox

        def received(source: MediaSession, pkt: RtpPacket, dtmf: bool) -> None:
            if not dtmf:
                inbox.append(pkt.payload)
        return received

    def tick(self) -> None:
        """One 20 ms step: mix what each member sent, send each what it hears."""
        self.ticks += 1
        members = self.members
        frames: list[list[int] | None] = []
        whispers: list[tuple[Member, list[int]]] = []
        for m in members:
            payload = m.inbox.popleft() if m.inbox else None
            codec = m.session.codec
            if payload is None or codec is None:
                frames.append(None)
            elif m.speaks:
                frames.append(decode(codec, payload))
            else:
                frames.append(None)
                if m.role == "whisper" and m.coach_of is not None:
                    whispers.append((m.coach_of, decode(codec, payload)))
        extra = self._tone.popleft() if self._tone else None
        total, heard = self._mixer.mix(frames, extra)
        for target, frame in whispers:  # the coach: added to the agent's frame only
            i = members.index(target)
            heard[i] = [a + b for a, b in zip(heard[i], frame, strict=True)]
        shared: dict[str, bytes] = {}
        for m, samples in zip(members, heard, strict=True):
            codec = m.session.codec
            if codec is None:
                continue
            if samples is total:  # a listener: the same bytes as every other listener
                payload = shared.get(codec)
                if payload is None:
                    payload = shared[codec] = encode(codec, samples)
            else:
                payload = encode(codec, samples)
            m.session.send_frame(payload)


class Conferences:
    """Every room of the switch, by name (created by the first member, gone with the last)."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.spies: set[Any] = set()  # running pbxcore.call.spy.Spy sessions (kept alive here)
        self.call_rooms: dict[str, Room] = {}  # a bridged call with third parties, by call id

    def room(self, name: str, pacer: Pacer) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name, pacer, self._empty)
        return room

    def _empty(self, room: Room) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    def status(self) -> list[dict[str, Any]]:
        return [self.rooms[name].view() for name in sorted(self.rooms)]


async def _pin_ok(call: Call, pin: str) -> bool:
    """Ask for the PIN (a beep, then digits ended by # or by the PIN's length) up to 3 times."""
    media = call.media
    for _ in range(PIN_TRIES):
        media.flush_digits()
        try:
            await media.play(call.sound("beep"))
        except ValueError:
            pass
        digits = ""
        try:
            while len(digits) < len(pin):
                key = await asyncio.wait_for(media.digits.get(), 10.0)
                if key == "#":
                    break
                digits += key
        except TimeoutError:
            pass
        if digits == pin:
            return True
        call.note("note", {"conference": "wrong PIN"})
    return False


async def join(call: Call, name: str, *, moderator: bool, muted: bool, max_members: int | None,
               pin: str | None, end: bool) -> Outcome | None:
    """The `conference` action: None once the caller was in the room (the call is then over),
    or the `conference` event's Outcome when it never got in (full, bad_pin)."""
    deps = call.deps
    if not call.answered:
        await call.answer()
    if pin and not await _pin_ok(call, pin):
        fields = conference_fields(name, "bad_pin", 0.0)
        return Outcome("conference", result="bad_pin", extra=fields)
    room = deps.conferences.room(name, deps.pacer)
    if max_members is not None and len(room.members) >= max_members:
        if not room.members:
            deps.conferences._empty(room)
        fields = conference_fields(name, "full", 0.0)
        call.note("note", {"conference": name, "result": "full"})
        return Outcome("conference", result="full", extra=fields)
    member = Member(room.new_number(), call.info.call_id, call.info.caller, call.media,
                    moderator=moderator, muted=muted, end=end)
    member.hangup = call.end_by_switch
    await attend(call, room, member)
    return None


async def attend(call: Call, room: Room, member: Member) -> None:
    """Keep `member` (the call's media) in `room` until it leaves; the call is then over."""
    room.add(member)
    call.note("note", {"conference": room.name, "member": member.number, "role": member.role,
                       "moderator": member.moderator, "muted": member.muted})
    call.doing("in conference", room.name)
    log.info("call %s joined conference %s as member %d", call.info.call_id, room.name,
             member.number)
    try:
        # shield: a hangup cancels this task, which must not cancel the member's reason
        await asyncio.shield(member.done)
    finally:
        room.remove(member)  # the caller hung up (task cancelled): "left"
        # Read the reason here, not from the await: a kick hangs the call up at once, and the
        # cancellation of this task can overtake the awaited result.
        why = member.done.result()
        seconds = time.time() - member.joined
        call.carry(conference_fields(room.name, why, seconds))
        call.note("note", {"conference": room.name, "left": why, "seconds": round(seconds, 3)})
