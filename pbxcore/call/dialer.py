"""`dial`: ring targets for a call, bridge the first that answers, report the rest.

Theory of operation.  Targets are checked against the route's allow-list first (toll fraud
through a script bug is the classic PBX disaster), then resolved: an extension to the phone that
registered it (reached at the address its REGISTER came from), a `sip:` URI to its host, a number
to a trunk.  Sequential mode rings each target for `timeout` in turn (a hunt list); parallel mode
rings all and the first 2xx wins, the others get CANCEL.  While it rings the caller hears 180
ringing (or, once answered, a ringback tone / hold music on the media).  When a leg answers, the
caller is answered if needed and both media sessions are bridged until either side hangs up; the
call is then over.  Every leg, answered or not, becomes one entry of the CDR's legs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pbxcore.call.outbound import DialResult, OutboundLeg, Target
from pbxcore.call.registrar import Binding
from pbxcore.media.bridge import Bridge, CallRecorder
from pbxcore.media.session import MediaSession
from pbxcore.rtp.tones import ringback_eu
from pbxcore.sip.message import SipSyntaxError
from pbxcore.sip.peer import Peer
from pbxcore.sip.registration import Credentials
from pbxcore.sip.sdp import build_offer
from pbxcore.sip.uri import parse_uri
from pbxcore.verbs.base import Outcome

if TYPE_CHECKING:
    from pbxcore.call.call import Call, CallDeps

log = logging.getLogger("pbxcore.dial")


class DialRefused(Exception):
    """A target that is not dialled at all (not allowed, unknown, not registered)."""

    def __init__(self, label: str, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.label, self.reason, self.code = label, reason, code


def allowed(call: Call, target: str) -> bool:
    """The route's `dial_allow` regexes, or by default: the switch's own extensions only."""
    patterns = call.route.dial_allow
    if patterns is None:
        return call.deps.config.user(target) is not None
    return any(p.fullmatch(target) for p in patterns)


async def resolve(call: Call, label: str) -> list[Target]:
    """Where `label` rings: every registered phone of an extension (a desk phone and a
    softphone ring together, RFC 3261 §16.6 forking done by the B2BUA), else one target."""
    if not allowed(call, label):
        log.warning("call %s: dial %s refused: not allowed by the route", call.info.call_id, label)
        raise DialRefused(label, "not allowed")
    return await resolve_label(call.deps, label)


async def resolve_label(deps: CallDeps, label: str) -> list[Target]:
    """`resolve` without the route's allow-list: for callers that apply their own (callbacks:
    the queue's `callback_allow`)."""
    config = deps.config
    if config.user(label) is not None:
        # From the store: on a shared PostgreSQL another node may hold the REGISTER (issue 13).
        bindings = await deps.registrar.refresh(label)
        if not bindings:
            raise DialRefused(label, "not registered", 480)
        return [await _binding_target(label, b)
                for b in sorted(bindings, key=lambda b: b.expires_at, reverse=True)]
    if label.lower().startswith(("sip:", "sips:")):
        try:
            uri = parse_uri(label)
        except SipSyntaxError as exc:
            raise DialRefused(label, f"bad URI: {exc.reason}") from exc
        transport = (uri.param("transport") or "udp").lower()
        infos = await asyncio.get_running_loop().getaddrinfo(uri.host, uri.port or 5060)
        host = str(infos[0][4][0])
        return [Target(label, label, Peer(transport, host, uri.port or 5060))]
    trunk = config.trunk_for_number(label)
    trunks = deps.legs.trunks
    peer = trunks.peer_for(trunk) if trunk is not None and trunks is not None else None
    if trunk is None or peer is None:
        raise DialRefused(label, "no trunk for this number" if trunk is None
                          else f"trunk {trunk.name} is not resolved", 404 if trunk is None else 503)
    credentials = (Credentials(trunk.username, trunk.password or "")
                   if trunk.username else None)
    return [Target(label, f"sip:{trunk.prefix}{label}@{trunk.domain}", peer,
                   credentials=credentials, from_host=trunk.domain, from_user=trunk.from_user)]


async def _binding_target(label: str, binding: Binding) -> Target:
    """A registered phone: at the REGISTER's source, or when it came through proxies (Path,
    RFC 3327 §5.3) via the first Path hop with the whole Path as the Route set."""
    if not binding.path:
        return Target(label, binding.contact, binding.source)
    try:
        hop = parse_uri(binding.path[0])
    except SipSyntaxError as exc:
        raise DialRefused(label, f"bad Path: {exc.reason}") from exc
    transport = (hop.param("transport") or "udp").lower()
    port = hop.port or 5060
    infos = await asyncio.get_running_loop().getaddrinfo(hop.host, port)
    return Target(label, binding.contact, Peer(transport, str(infos[0][4][0]), port),
                  route=binding.path)


async def dial(call: Call, labels: Sequence[str], *, mode: str = "sequential",
               timeout: float = 30.0, caller_id: str | None = None, ringback: str = "ring",
               record: bool = False) -> Outcome | None:
    """Ring `labels`; None when a leg was bridged (the call is over), else the `dial` event."""
    last = DialResult("failed", None, "nothing to dial")
    last_label = labels[-1] if labels else ""
    rung = 0.0
    await _ringback(call, ringback)
    try:
        groups = [list(labels)] if mode == "parallel" else [[label] for label in labels]
        for group in groups:
            targets: list[Target] = []
            for label in group:
                try:
                    targets.extend(await resolve(call, label))
                except DialRefused as refused:
                    last, last_label = DialResult("failed", refused.code, refused.reason), label
                    call.add_leg({"target": label, "disposition": "failed",
                                  "sip_code": refused.code, "reason": refused.reason})
            if not targets:
                continue
            outcome = await _ring(call, targets, timeout=timeout, caller_id=caller_id,
                                  record=record)
            if outcome is None:
                return None
            last, last_label, seconds = outcome
            rung += seconds
    finally:
        if call.answered and not call.ended.is_set():
            call.media.set_background(None)
    return Outcome("dial", result=last.status, extra={
        "dial_status": last.status, "dial_code": "" if last.code is None else str(last.code),
        "dial_target": last_label, "dial_seconds": f"{rung:.3f}", "dial_reason": last.reason,
    })


async def _ringback(call: Call, ringback: str) -> None:
    if not call.answered:
        if ringback == "moh":
            await call.answer()
        else:
            await call.ring()
            return
    with contextlib.suppress(Exception):
        pcm = call.sound(call.route.hold_music or "moh") if ringback == "moh" else ringback_eu()
        call.media.set_background(pcm)


async def _ring(call: Call, targets: list[Target], *, timeout: float, caller_id: str | None,
                record: bool) -> tuple[DialResult, str, float] | None:
    """Ring these targets at once; bridge the winner (None) or report the last failure."""
    winner, failure = await _ring_targets(call, targets, timeout=timeout, caller_id=caller_id)
    if winner is None:
        assert failure is not None
        return failure
    acd = call.deps.acd  # an agent dialled directly is busy: no queue call meanwhile
    if acd is not None:
        acd.direct_call(winner.target.label, True)
    try:
        await bridge_call(call, winner, record)
    finally:
        if acd is not None:
            acd.direct_call(winner.target.label, False)
        await release_leg(call, winner)
    return None


async def _ring_targets(call: Call, targets: list[Target], *, timeout: float,
                        caller_id: str | None
                        ) -> tuple[OutboundLeg | None, tuple[DialResult, str, float] | None]:
    """Ring targets in parallel: the answered leg (still up), or how they all failed."""
    deps = call.deps
    legs: list[OutboundLeg] = []
    winner: OutboundLeg | None = None
    call.doing("dialling", ", ".join(dict.fromkeys(t.label for t in targets)))
    try:
        for target in targets:
            media = await MediaSession.open(deps.media_host, deps.ports, deps.pacer)
            offer = build_offer(deps.media_host, media.local_port, secrets.randbits(31), 1)
            leg = OutboundLeg(deps.legs, target, media, offer,
                              caller=caller_id or target.from_user or call.info.caller
                              or "anonymous",
                              caller_name=call.info.caller_name,
                              max_forwards=max(0, call.max_forwards - 1))
            legs.append(leg)
            leg.start()
        try:
            winner = await _first_answer(legs, timeout)
        except asyncio.CancelledError:  # the caller hung up (or cancelled) while it rang
            for leg in legs:
                call.add_leg(leg_record(leg, leg.result.result() if leg.result.done()
                                         else DialResult("canceled", 487, "caller hung up")))
            raise
        for leg in legs:
            if leg is not winner:
                leg.hangup()  # CANCEL the losers (and BYE one that answers too late)
                call.add_leg(leg_record(leg, _result_of(leg, lost=winner is not None)))
        if winner is not None:
            return winner, None
        failed = [_result_of(leg) for leg in legs]
        best = next((r for r in failed if r.status == "busy"), failed[-1])
        label = legs[failed.index(best)].target.label
        return None, (best, label, max(leg.rang_seconds() for leg in legs))
    finally:
        for leg in legs:
            if leg is not winner:
                await release_leg(call, leg)


async def release_leg(call: Call, leg: OutboundLeg) -> None:
    if not leg.ended.is_set():
        leg.hangup()
    call.deps.legs.forget_leg(leg)
    await leg.media.close()


async def _first_answer(legs: list[OutboundLeg], timeout: float) -> OutboundLeg | None:
    deadline = time.monotonic() + timeout
    pending = {leg.result for leg in legs}
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        done, pending = await asyncio.wait(pending, timeout=left,
                                           return_when=asyncio.FIRST_COMPLETED)
        for leg in legs:
            if leg.result in done and leg.result.result().status == "answered":
                return leg
    return None


def _result_of(leg: OutboundLeg, *, lost: bool = False) -> DialResult:
    """How a leg ended; one still ringing was cancelled: it lost the race, or rang out."""
    if leg.result.done():
        return leg.result.result()
    if lost:
        return DialResult("canceled", 487, "another target answered")
    return DialResult("noanswer", 487 if leg.cancelled else None, "no answer in time")


def leg_record(leg: OutboundLeg, result: DialResult, **more: Any) -> dict[str, Any]:
    disposition = {"noanswer": "no answer"}.get(result.status, result.status)
    return {"target": leg.target.label, "uri": leg.target.uri, "disposition": disposition,
            "sip_code": result.code, "reason": result.reason,
            "ring_seconds": leg.rang_seconds(), **more}


async def bridge_call(call: Call, leg: OutboundLeg, record: bool,
                      on_transfer: Callable[[str], None] | None = None) -> None:
    """Connect caller and callee until one hangs up, following hold and blind transfer (REFER)
    from the callee's side; then end the call.  `on_transfer(target)` is told when the callee
    handed the caller over (the queue frees the agent then, not when the call ends)."""
    if not call.answered:
        await call.answer()
    call.media.set_background(None)
    bridge = Bridge(call.media, leg.media)
    bridge.start()
    if record:
        bridge.recorder = CallRecorder()
    call.bridge = bridge
    answered = datetime.now(UTC)
    call.note("note", {"bridged": leg.target.label, "callee_uri": leg.target.uri})
    call.doing("bridged", leg.target.label)
    log.info("call %s bridged to %s", call.info.call_id, leg.target.label)
    from pbxcore.call.spy import consult_feature  # spy rings legs like the dialer does

    feature = consult_feature(call, leg)  # the agent's *3EXT#: a consultant joins
    try:
        while True:
            ended = asyncio.ensure_future(leg.ended.wait())
            changed = asyncio.ensure_future(leg.changed.wait())
            try:  # the caller hanging up cancels this task, and so this wait
                await asyncio.wait({ended, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                changed.cancel()
            if leg.ended.is_set() and leg.refer_to is None:
                call.remote_hangup("callee", "BYE from callee")
                call.leg.bye()
                return
            leg.changed.clear()  # a REFER first, even if the agent already hung up after 202
            if call.info.call_id not in call.deps.conferences.call_rooms:
                # (while a supervisor or consultant is on, the room sends for both sides:
                # hold is not followed then, docs/architecture.md)
                bridge.hold(leg.media, leg.held, call.hold_music())
            if leg.refer_to is not None:
                new = await _transfer(call, bridge, leg)
                if new is None and leg.ended.is_set():
                    # Nobody took the transfer and the agent is gone: the route's fallback.
                    await _fallback(call)
                    return
                if new is not None:
                    _close_leg_record(call, leg, bridge, answered, transferred_to=new.target.label)
                    if on_transfer is not None:
                        on_transfer(new.target.label)
                        on_transfer = None  # a later transfer is the new callee's, not the agent's
                    old, leg, answered = leg, new, datetime.now(UTC)
                    old.hangup()
                    await release_leg(call, old)
                    bridge.b = leg.media
                    bridge.start()
                    call.doing("bridged", leg.target.label)
    finally:
        feature.cancel()
        bridge.stop()
        call.bridge = None
        _close_leg_record(call, leg, bridge, answered)
        leg.hangup()
        await release_leg(call, leg)


async def _transfer(call: Call, bridge: Bridge, leg: OutboundLeg) -> OutboundLeg | None:
    """Blind transfer asked by `leg`: ring its Refer-To for the caller.  The new leg if it
    answered; otherwise the caller goes back to `leg` if it is still there (RFC 5589 §7.1)."""
    target_label, leg.refer_to = leg.refer_to or "", None
    call.note("note", {"transfer": target_label, "by": leg.target.label,
                       "referred_by": leg.referred_by})
    call.transfers.append((leg.target.label, target_label))
    bridge.stop()
    music = call.hold_music()
    call.media.set_background(ringback_eu() if music is None else music)
    failure: tuple[DialResult, str, float] | None
    try:
        targets = await resolve(call, target_label)
    except DialRefused as refused:
        failure = (DialResult("failed", refused.code, refused.reason), target_label, 0.0)
    else:
        new, failure = await _ring_targets(call, targets, timeout=30.0, caller_id=None)
        if new is not None:
            leg.notify_refer(200, "OK")
            call.media.set_background(None)
            _tell(call, leg.target.label, target_label, "answered")
            return new
    assert failure is not None
    result = failure[0]
    code = result.code or 480
    leg.notify_refer(code, result.reason or result.status)
    _tell(call, leg.target.label, target_label, result.status)
    call.note("note", {"transfer_failed": target_label, "status": result.status, "code": code})
    call.media.set_background(None)
    if not leg.ended.is_set():
        bridge.start()  # back to the transferring agent
        call.doing("bridged", leg.target.label)
    return None


async def _fallback(call: Call) -> None:
    from pbxcore.call.engine import execute_all, fallback_actions  # the engine imports verbs

    call.actor = "switch"
    await execute_all(call, fallback_actions(call, "transfer failed and the agent had left"))
    if not call.ended.is_set():
        await call.hangup()


def _tell(call: Call, by: str, to: str, status: str) -> None:
    """The script's `transfer` event (for its logs), run beside the call, never blocking it."""
    from pbxcore.call.engine import inform  # the engine imports verbs, verbs reach the dialer

    outcome = Outcome("transfer", result=status, extra={
        "transfer_by": by, "transfer_to": to, "transfer_status": status})
    call.background.append(asyncio.ensure_future(inform(call, outcome)))


def _close_leg_record(call: Call, leg: OutboundLeg, bridge: Bridge, answered: datetime,
                      **more: Any) -> None:
    """The CDR entry of an answered leg.  No await here: a hangup cancels the caller's task;
    a recording is written in the background and awaited before the CDR closes."""
    talk = (datetime.now(UTC) - answered).total_seconds()
    call.talk_seconds = (call.talk_seconds or 0.0) + talk
    recordings: list[str] = []
    if bridge.recorder is not None:
        path, name = call.new_recording()
        call.background.append(asyncio.ensure_future(bridge.recorder.write(path)))
        recordings = [name, name.removesuffix(".wav") + "-stereo.wav"]
        call.recordings.append(recordings[1])
        bridge.recorder = CallRecorder()
    call.add_leg(leg_record(leg, DialResult("answered", 200), answer=answered.isoformat(),
                             talk_seconds=round(talk, 3),
                             hold_seconds=round(bridge.take_hold_seconds(), 3),
                             recordings=recordings, **more))
