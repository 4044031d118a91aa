"""Ringing agents for one offer of the ACD model: the SIP side of `Offer` and `CancelOffer`.

Theory of operation.  An `Offer` names a waiting caller and the agents to ring (one, or all with
`ringall`).  `OfferRun` rings every registered phone of each agent at once (a desk phone and a
softphone of the same extension ring together, like `dial`), with the screen pop in the INVITE:
the display name `[QUEUE] caller name`, the caller's number in From, and the call variables the
script set as `X-Pbx-Var-<name>` headers.  Each agent's outcome goes back to the model exactly
once — `answered`, `no_answer` (rang out or declined) or `offer_failed` (nothing reachable) — and
the model answers with decisions (Connect, CancelOffer, ...) that the service carries out.  The
model owns the ring timeout: it cancels the offer itself, so a leg here rings until cancelled.
Every leg becomes an entry of the caller's CDR legs (agent, disposition, ring time, queue).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pbxcore.acd.model import Decision, Offer
from pbxcore.call.dialer import leg_record
from pbxcore.call.outbound import DialResult, OutboundLeg, Target
from pbxcore.media.session import MediaSession
from pbxcore.script.sanitize import env_value
from pbxcore.sip.sdp import build_offer

if TYPE_CHECKING:
    from pbxcore.acd.model import Acd
    from pbxcore.call.call import CallDeps, CallInfo

log = logging.getLogger("pbxcore.acd")

SCREEN_POP_VALUE_MAX = 200  # characters of one X-Pbx-Var header value


class Party(Protocol):
    """Who an offer is for, as the agents' legs need it: a waiting `Call`, or a callback's
    `CallbackCall` (pbxcore.acd.callbacks) that has no live caller."""

    @property
    def deps(self) -> CallDeps: ...
    @property
    def info(self) -> CallInfo: ...
    @property
    def vars(self) -> dict[str, str]: ...
    @property
    def max_forwards(self) -> int: ...
    @property
    def background(self) -> list[asyncio.Future[Any]]: ...
    def add_leg(self, data: dict[str, Any]) -> None: ...


ScreenPop = tuple[str, list[tuple[str, str]]]


def screen_pop(call: Party, queue: str) -> tuple[str, list[tuple[str, str]]]:
    """The agent's INVITE: display name `[QUEUE] caller name` and the X-Pbx-* headers.

    Header values are script- or caller-controlled: control characters (CR, LF among them) are
    dropped so nothing can add a header of its own (RFC 3261 §7.3.1 folding, §25.1 grammar),
    and names keep to token characters."""
    who = call.info.caller_name or call.info.caller or "anonymous"
    display = env_value(f"[{queue}] {who}", 100)
    headers = [("X-Pbx-Queue", queue), ("X-Pbx-Call-Id", call.info.call_id)]
    for name, value in sorted(call.vars.items()):
        token = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "-_."))[:64]
        if token:
            headers.append((f"X-Pbx-Var-{token}", env_value(value, SCREEN_POP_VALUE_MAX)))
    return display, headers


ModelInput = Callable[["Acd", float], list[Decision]]

LEG_GONE_WAIT = 2.0  # seconds an offer waits for the agent's previous leg to be answered out


class AgentLegs:
    """The legs the ACD set up to each agent, until each is over on the wire."""

    def __init__(self) -> None:
        self._legs: dict[str, list[OutboundLeg]] = {}

    def add(self, agent: str, leg: OutboundLeg) -> None:
        live = [x for x in self._legs.get(agent, []) if not _over(x)]
        self._legs[agent] = [*live, leg]

    async def gone(self, agent: str) -> None:
        """Return once every earlier leg to `agent` is over (bounded by LEG_GONE_WAIT)."""
        live = [leg for leg in self._legs.get(agent, []) if not _over(leg)]
        self._legs[agent] = live
        if not live:
            return
        waits = [asyncio.ensure_future(_until_over(leg)) for leg in live]
        try:
            await asyncio.wait(waits, timeout=LEG_GONE_WAIT)
        finally:
            for w in waits:
                w.cancel()


def _over(leg: OutboundLeg) -> bool:
    """Rung out, cancelled or refused with a final response, or answered and since ended."""
    if not leg.result.done():
        return False
    return leg.result.result().status != "answered" or leg.ended.is_set()


async def _until_over(leg: OutboundLeg) -> None:
    if not leg.result.done():
        await asyncio.wait([leg.result])  # (asyncio.wait never cancels what it waits for)
    if leg.result.result().status == "answered":
        await leg.ended.wait()


class OfferRun:
    """The legs of one offer, and which of its agents has answered or failed."""

    def __init__(self, offer: Offer, call: Party, report: Callable[[ModelInput], None],
                 legs: AgentLegs, pop: ScreenPop | None = None) -> None:
        self.offer = offer
        self.call = call
        self._pop = pop  # the screen pop when it is not the caller's (a callback's)
        self._legs = legs
        self._report = report  # feeds one model input (with `now`) and applies its decisions
        self.legs: dict[str, list[OutboundLeg]] = {a: [] for a in offer.agents}
        self.winner: OutboundLeg | None = None  # the answered leg the caller is bridged to
        self.done: set[str] = set()  # agents whose outcome is settled
        self._recorded: set[int] = set()  # legs already in the caller's CDR (by id)
        self._released: set[int] = set()  # legs hung up and given back (by id)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for agent in self.offer.agents:
            self._tasks.append(asyncio.ensure_future(self._ring(agent)))

    async def _ring(self, agent: str) -> None:
        call, deps = self.call, self.call.deps
        # The agent's leg of an earlier offer may still be on its way out (our CANCEL not yet
        # answered): a phone without call waiting would answer this INVITE 486.
        await self._legs.gone(agent)
        bindings = deps.registrar.bindings(agent)
        if not bindings:
            self._outcome(agent, "failed", DialResult("failed", 480, "not registered"))
            return
        display, headers = self._pop or screen_pop(call, self.offer.queue)
        legs = self.legs[agent]
        for b in sorted(bindings, key=lambda b: b.expires_at, reverse=True):
            media = await MediaSession.open(deps.media_host, deps.ports, deps.pacer)
            sdp = build_offer(deps.media_host, media.local_port, secrets.randbits(31), 1)
            leg = OutboundLeg(deps.legs, Target(agent, b.contact, b.source), media, sdp,
                              caller=call.info.caller or "anonymous", caller_name=display,
                              max_forwards=max(0, call.max_forwards - 1), extra_headers=headers)
            legs.append(leg)
            self._legs.add(agent, leg)
            leg.start()
        pending = {leg.result for leg in legs}
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for leg in legs:
                if leg.result in finished and leg.result.result().status == "answered":
                    self._answered(agent, leg)
                    return
        results = [leg.result.result() for leg in legs]
        best = next((r for r in results if r.status in ("busy", "declined")), results[-1])
        # Declined (603) counts toward auto-pause like a ring-out; busy (486: the phone is on
        # another call) and errors do not (Asterisk's autopausebusy/autopauseunavail default).
        how = ("rejected" if best.status == "declined" else
               "noanswer" if best.status in ("noanswer", "canceled") else "failed")
        self._outcome(agent, how, best)

    def _answered(self, agent: str, leg: OutboundLeg) -> None:
        for other in self.legs[agent]:
            if other is not leg:
                self._drop(other, DialResult("canceled", 487, "another phone answered"))
        if agent in self.done:  # cancelled meanwhile: a late answer is hung up at once
            self._drop(leg, DialResult("canceled", None, "offer withdrawn"))
            return
        self.done.add(agent)
        self.winner = leg
        offer_id = self.offer.offer_id
        self._report(lambda acd, now: acd.answered(offer_id, agent, now))

    def _outcome(self, agent: str, how: str, result: DialResult) -> None:
        if agent in self.done:
            return
        self.done.add(agent)
        for leg in self.legs[agent]:
            self._record(leg, result)
        offer_id = self.offer.offer_id
        if how == "failed":
            self._report(lambda acd, now: acd.offer_failed(offer_id, agent, now))
        else:
            rejected = how == "rejected"
            self._report(lambda acd, now: acd.no_answer(offer_id, agent, now,
                                                        rejected=rejected))

    def cancel(self, agents: Sequence[str], reason: str) -> None:
        """CancelOffer: stop ringing these agents.  The winner's leg is kept for the bridge
        unless the model withdraws it (the caller left while the agent answered)."""
        result = DialResult("noanswer" if reason == "ring_timeout" else "canceled", 487,
                            _CANCEL_TEXT.get(reason, reason))
        for agent in agents:
            self.done.add(agent)
            for leg in self.legs.get(agent, []):
                if leg is self.winner and reason == "withdrawn":
                    self.winner = None
                self._drop(leg, result)

    def _drop(self, leg: OutboundLeg, result: DialResult) -> None:
        if leg is self.winner:
            return
        self._record(leg, result)
        if id(leg) in self._released:
            return
        self._released.add(id(leg))
        leg.hangup()  # CANCEL while it rings, BYE once answered
        self.call.background.append(asyncio.ensure_future(release(self.call.deps, leg)))

    def _record(self, leg: OutboundLeg, result: DialResult) -> None:
        """The leg's entry in the caller's CDR, once; the winner's is written by the bridge."""
        if id(leg) in self._recorded or leg is self.winner:
            return
        self._recorded.add(id(leg))
        final = leg.result.result() if leg.result.done() else None
        actual = final if final is not None and final.status != "answered" else result
        self.call.add_leg(leg_record(leg, actual, queue=self.offer.queue))

    async def close(self) -> None:
        """Cancel whatever still rings (never the winner) and wait for the ringing tasks."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for agent, legs in self.legs.items():
            self.done.add(agent)
            for leg in legs:
                if leg is not self.winner:
                    self._drop(leg, DialResult("canceled", 487, "offer ended"))


async def release(deps: CallDeps, leg: OutboundLeg) -> None:
    """Hang up (if need be) and give back a leg the ACD set up (dialer.release_leg's steps)."""
    if not leg.ended.is_set():
        leg.hangup()
    deps.legs.forget_leg(leg)
    await leg.media.close()


_CANCEL_TEXT = {"answered_elsewhere": "another agent answered",
                "ring_timeout": "no answer in time", "caller_left": "caller left the queue",
                "withdrawn": "offer withdrawn"}
