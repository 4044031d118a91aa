"""Calls the switch places itself: click-to-call and notification calls (`originate`).

Theory of operation.  An originated call has no caller's INVITE: the switch rings its first
party (FROM: an extension, a `sip:` URI or a number through a trunk) as a dialled leg, and once
that leg answers it *is* the call's first party.  The seam is `CallLeg` (call/leg.py): an
`OriginLeg` implements it over the answered `OutboundLeg`, so `Call` and `run_call` drive an
originated call exactly as an inbound one (hangup → BYE to FROM, `pbx hangup` before answer →
CANCEL).  Then either

* click-to-call: FROM hears ringback while TO is dialled through `dial` (allow-list, hunt,
  bridge, hold, REFER, CDR legs, all as for a script's `dial`); or
* script mode: the script runs on the answered call with the same events as an inbound call
  (`incoming`, outcomes, `hangup`), every event carrying PBX_DIRECTION=outbound.

Everything an originated call rings, FROM and TO alike, is checked against `[originate]
dial_allow` (default: the switch's own extensions only) before anything is sent, so a CRM that
can reach the control socket cannot dial out of the building unless the operator allowed it.
The CDR's route is "originate" (or "originate:SCRIPT"), which is how reports tell an originated
call from an inbound one (report/model.py `direction`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pbxcore.call.call import Call, CallInfo
from pbxcore.call.dialer import DialRefused, _ring_targets, leg_record, resolve
from pbxcore.call.engine import run_call, script_flow
from pbxcore.call.outbound import DialResult, OutboundLeg
from pbxcore.config import Config, Route
from pbxcore.media.sounds import confined
from pbxcore.sip.dialog import Dialog
from pbxcore.sip.message import Request
from pbxcore.sip.sdp import AudioAnswer
from pbxcore.store.base import CdrStart, new_call_id

if TYPE_CHECKING:
    from pbxcore.call.switch import Switch

log = logging.getLogger("pbxcore.originate")

#: A target the way a script writes one in `dial`: a number/extension or a sip: URI; no
#: spaces, quotes or controls (it goes into a Request-URI and a From header).
_TARGET = re.compile(r"^(?:[A-Za-z0-9_.+\-*#]{1,64}|sips?:[A-Za-z0-9_.+\-*#%@:;=\[\]]{1,200})$")
_CALLER_ID = re.compile(r"^[A-Za-z0-9_.+\-*#]{1,64}$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_VARS = 64
MAX_VAR_VALUE = 1024

#: How FROM's ringing ended → the originated CDR's disposition.
_DISPOSITION = {"busy": "busy", "noanswer": "no answer", "declined": "rejected"}


class OriginateError(ValueError):
    """The request is refused before anything is sent (bad argument, not allowed)."""


@dataclass(frozen=True)
class Originate:
    """One `originate` request, checked."""

    first: str  # FROM: rung first
    to: str | None  # click-to-call: dialled once FROM answers
    script: Path | None  # script mode: run on the answered call
    caller_id: str | None = None
    vars: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds FROM (and TO) ring; None: [originate] ring_timeout


def permitted(config: Config, label: str) -> bool:
    """`[originate] dial_allow` (re.fullmatch), or by default the switch's own extensions."""
    patterns = config.originate.dial_allow
    if patterns is None:
        return config.user(label) is not None
    return any(p.fullmatch(label) for p in patterns)


def check_request(config: Config, args: Mapping[str, object]) -> Originate:
    """The control command's args (from, to, caller_id, script, vars, timeout), checked."""
    first, to, script = args.get("from"), args.get("to"), args.get("script")
    if not isinstance(first, str) or not _TARGET.match(first):
        raise OriginateError('originate needs "from": an extension, number or sip: URI')
    if to is not None and (not isinstance(to, str) or not _TARGET.match(to)):
        raise OriginateError('"to" must be an extension, number or sip: URI')
    if (to is None) == (script is None):
        raise OriginateError('originate needs either "to" (click-to-call) or "script"')
    for label in (first, to):
        if label is not None and not permitted(config, label):
            raise OriginateError(f"{label}: not allowed by [originate] dial_allow")
    path: Path | None = None
    if script is not None:
        if not isinstance(script, str):
            raise OriginateError('"script" must be a file name under [paths] scripts')
        try:
            path = confined(config.paths.scripts, script)
        except ValueError as exc:
            raise OriginateError(f"script: {exc}") from exc
        if not path.is_file():
            raise OriginateError(f"script {script}: no such file under {config.paths.scripts}")
    caller_id = args.get("caller_id")
    if caller_id is not None and (not isinstance(caller_id, str)
                                  or not _CALLER_ID.match(caller_id)):
        raise OriginateError('"caller_id" must be a number or SIP user name')
    raw_vars = args.get("vars") or {}
    if not isinstance(raw_vars, Mapping) or len(raw_vars) > MAX_VARS:
        raise OriginateError(f'"vars" must be an object of at most {MAX_VARS} names')
    variables: dict[str, str] = {}
    for name, value in raw_vars.items():
        if not isinstance(name, str) or not _VAR.match(name):
            raise OriginateError(f"variable name {name!r}: letters, digits and _ only")
        if not isinstance(value, str | int | float) or len(str(value)) > MAX_VAR_VALUE:
            raise OriginateError(f"variable {name}: a string of at most {MAX_VAR_VALUE} chars")
        variables[name] = str(value)
    timeout = args.get("timeout")
    if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool)
                                or not 1 <= timeout <= 600):
        raise OriginateError('"timeout" must be 1..600 seconds')
    return Originate(first, to, path, caller_id, variables,
                     float(timeout) if timeout is not None else None)


class OriginLeg:
    """The first party of an originated call (a `CallLeg`): nothing until FROM answers, then
    the answered `OutboundLeg`.  Hanging up before the answer cancels the ringing (the flow's
    cancellation CANCELs every leg still ringing, dialer._ring_targets)."""

    def __init__(self) -> None:
        self.leg: OutboundLeg | None = None

    @property
    def invite(self) -> Request | None:
        return None  # no caller's INVITE: our own legs start at Max-Forwards 70

    @property
    def dialog(self) -> Dialog | None:
        return None  # FROM's dialog is routed by the switch as a dialled leg's

    @property
    def local_tag(self) -> str:
        return self.leg.local_tag if self.leg is not None else ""

    @property
    def contact(self) -> str:
        return self.leg.contact if self.leg is not None else ""

    def ring(self) -> None:
        pass  # FROM is rung by the flow

    def answer(self, sdp: bytes) -> None:
        pass  # FROM answered our offer: nothing to send

    def reject(self, status: int, *, extra: tuple[tuple[str, str], ...] = ()) -> None:
        if self.leg is not None:
            self.leg.hangup()

    def bye(self, *, now: bool = False) -> None:
        if self.leg is not None:
            self.leg.hangup()

    def on_ack(self) -> None:
        pass

    def ack_timed_out(self) -> None:
        pass


def origin_route(config: Config, script: Path | None) -> Route:
    """The route-like settings an originated call runs with ([originate])."""
    o = config.originate
    return Route(match=re.compile(r"^originate$"), script=script or Path("originate"),
                 timeout=o.script_timeout, fallback=(), language=o.language, public=True,
                 env={}, hangup_event=script is not None, hold_music=None, index=-1,
                 dial_allow=o.dial_allow, name="originate")


def start(switch: Switch, request: Originate) -> str:
    """Start the originated call in the background; its call id at once."""
    deps = switch.deps
    config = deps.config
    if request.script is None:
        assert request.to is not None
        user = config.user(request.first)
        caller, name, called = request.first, (user.name if user else None) or "", request.to
    else:
        caller = request.caller_id or config.originate.caller_id
        name, called = "", request.first
    info = CallInfo(call_id=new_call_id(), sip_call_id="", caller=caller, caller_name=name,
                    called=called)
    leg = OriginLeg()
    # The offer only matters for an inbound call's answer; an originated call's media is
    # negotiated by FROM's leg (Call.adopt_media).
    offer = AudioAnswer(remote_host="127.0.0.1", remote_port=9, payload_type=0,
                        codec="PCMU", dtmf_payload_type=None, direction="sendrecv",
                        hold=False)
    call = Call(deps, leg, info, origin_route(config, request.script), offer)
    call.vars.update(request.vars)
    call.carry({"direction": "outbound"})
    call.flow = lambda c: _flow(c, leg, request)
    switch.spawn(call, _lifecycle(switch, call, leg, request))
    log.info("originate %s: %s -> %s", info.call_id, request.first,
             request.to if request.to is not None else f"script {request.script}")
    return info.call_id


async def _lifecycle(switch: Switch, call: Call, leg: OriginLeg, request: Originate) -> None:
    info = call.info
    route = "originate" if request.script is None else f"originate:{request.script}"
    call.open_cdr(CdrStart(call_id=info.call_id, sip_call_id=info.sip_call_id,
                           start=info.started, caller=info.caller, called=info.called,
                           caller_name=info.caller_name, route=route,
                           node=switch.deps.config.node))
    try:
        await run_call(call)
    finally:
        if leg.leg is not None:
            switch.deps.legs.forget_leg(leg.leg)


async def _flow(call: Call, origin: OriginLeg, request: Originate) -> None:
    """An agent placing a click-to-call is busy: no queue call is offered to it meanwhile."""
    acd = call.deps.acd
    agent = request.first if acd is not None and call.deps.config.user(request.first) else None
    if acd is not None and agent is not None:
        acd.direct_call(agent, True)
    try:
        await _ring_and_run(call, origin, request)
    finally:
        if acd is not None and agent is not None:
            acd.direct_call(agent, False)


async def _ring_and_run(call: Call, origin: OriginLeg, request: Originate) -> None:
    """Ring FROM; once it answers, dial TO (click-to-call) or run the script."""
    deps = call.deps
    timeout = request.timeout or deps.config.originate.ring_timeout
    shown = request.caller_id or call.info.caller
    if request.to is not None:  # FROM's phone shows whom it is about to call
        shown = _user_part(request.to)
    try:
        targets = await resolve(call, request.first)
    except DialRefused as refused:
        call.add_leg({"target": request.first, "disposition": "failed",
                      "sip_code": refused.code, "reason": refused.reason})
        call.origin_status = "failed"
        call.remote_hangup("switch", f"{request.first}: {refused.reason}", refused.code)
        return
    winner, failure = await _ring_targets(call, targets, timeout=timeout, caller_id=shown)
    if winner is None:
        assert failure is not None
        result = failure[0]
        call.origin_status = _DISPOSITION.get(result.status, "failed")
        call.remote_hangup("callee", f"{request.first}: {result.status}", result.code)
        return
    origin.leg = winner
    call.adopt_media(winner.media)
    call.add_leg(leg_record(winner, DialResult("answered", 200),
                            answer=datetime.now(UTC).isoformat(), role="from"))
    call.note("note", {"originate": "answered", "from": request.first})
    watch = asyncio.ensure_future(_watch(call, winner))
    try:
        if request.to is None:
            await script_flow(call)
        else:
            outcome = await call.dial([request.to], mode="sequential", timeout=timeout,
                                      caller_id=request.caller_id or request.first,
                                      ringback="ring", record=False)
            if outcome is not None:  # TO did not answer: FROM is told by the hangup
                call.note("note", {"originate": "to failed", "status": outcome.result})
                call.vars.setdefault("dial_status", outcome.result)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch


async def _watch(call: Call, leg: OutboundLeg) -> None:
    """FROM hanging up (its BYE reaches the dialled leg) ends the call, as a caller's BYE."""
    await leg.ended.wait()
    if not leg.bye_sent:
        call.remote_hangup("caller", "BYE from caller")


def _user_part(target: str) -> str:
    if target.lower().startswith(("sip:", "sips:")):
        rest = target.split(":", 1)[1]
        return rest.split("@", 1)[0] if "@" in rest else "pbx"
    return target
