"""The transaction user: what the switch answers to each request (RFC 3261 §8.2, §12-§15).

Out of dialog: OPTIONS → 200 with Allow; REGISTER → registrar; INVITE → checks in the order of
RFC 3261 §8.2 (scheme 416, Require 420, Content-Type 415, Accept 406), then digest auth for
everything but public routes, then route lookup (404), SDP offer/answer (488), then a `Call` and
its script loop.  In dialog: BYE ends the call, re-INVITE refreshes media, anything for a dialog
we do not know gets 481.  SUBSCRIBE to message-summary → the lamps (call/mwi.py).  Unknown methods get 501 with Allow,
known-but-unsupported ones 405.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from pbxcore.acd.features import feature_route, run_feature
from pbxcore.call.auth import SwitchAuth
from pbxcore.call.call import Call, CallDeps, CallInfo
from pbxcore.call.engine import run_call
from pbxcore.call.leg import ALLOW, InboundLeg
from pbxcore.call.mwi import Mwi
from pbxcore.call.outbound import OutboundLeg
from pbxcore.call.registrar import Registrar
from pbxcore.call.trunks import TrunkRegistrations, called_number
from pbxcore.call.voicemail import VoicemailService
from pbxcore.call.voicemail_menu import access_route, run_menu
from pbxcore.config import Route
from pbxcore.sip.address import parse_name_addr
from pbxcore.sip.build import make_response
from pbxcore.sip.message import Request, Response, SipSyntaxError
from pbxcore.sip.peer import Peer
from pbxcore.sip.sdp import AudioAnswer, SdpError, build_answer, negotiate, parse_sdp
from pbxcore.sip.uri import parse_uri
from pbxcore.store.base import CdrStart, new_call_id
from pbxcore.transport.sip_endpoint import SipEndpoint

log = logging.getLogger("pbxcore.switch")

KNOWN_METHODS = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO",
                           "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER",
                           "UPDATE"})
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
HEADERS_FOR_SCRIPTS = ("User-Agent", "Subject", "Diversion", "P-Asserted-Identity", "X-Crm-Id")


class Switch:
    """Implements `SipHandler`: dispatches requests, owns the live calls."""

    def __init__(self, deps: CallDeps, clock: Callable[[], float] = time.monotonic) -> None:
        self.deps = deps
        self.clock = clock
        self.registrar = Registrar(clock, store=deps.store, node=deps.config.node)
        cluster = deps.config.cluster
        # [cluster] secret: every node signs nonces alike, so a 401 from one node can be
        # answered at another (docs/scaling.md); else a random key of this process.
        shared = cluster.secret.encode() if cluster is not None and cluster.secret else None
        self.auth = SwitchAuth(deps.config.sip.realm, deps.config.sip.digest_algorithms,
                               secret=shared)
        self.calls: dict[str, Call] = {}  # by our call id
        self._by_sip_call_id: dict[str, list[Call]] = {}  # live calls by the INVITE's Call-ID
        self._by_invite_tx: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_legs: dict[str, OutboundLeg] = {}  # our client transactions → their leg
        self._out_dialogs: dict[str, OutboundLeg] = {}  # dialled legs by SIP Call-ID
        self.trunks: TrunkRegistrations | None = None  # set by the server once started
        deps.legs = self
        deps.registrar = self.registrar
        deps.voicemail = VoicemailService(deps)
        self.mwi = Mwi(deps, clock)  # message-waiting lamps (SUBSCRIBE message-summary)
        deps.voicemail.mwi = self.mwi

    @property
    def endpoint(self) -> SipEndpoint:
        return self.deps.endpoint

    def _reply(self, tx: str, request: Request, status: int, *,
               headers: list[tuple[str, str]] | None = None, reason: str | None = None) -> None:
        tag = None if status == 100 else secrets.token_hex(6)
        self.endpoint.respond(tx, make_response(request, status, reason, to_tag=tag,
                                                headers=headers or []))

    # -- SipHandler ---------------------------------------------------------------------------

    def on_request(self, tx: str, request: Request, source: Peer) -> None:
        """Answer one request, guarded: every request reaching the TU gets a final response
        (§8.2; an INVITE server transaction in Proceeding has no timer, §17.2.1).  The peer's
        fault gets its 4xx (SdpError: 488, §13.3.1.1); our bug is logged with its traceback and
        the repr-escaped Call-ID and gets 500 (§21.5.1), unless a final already went out."""
        try:
            self._handle(tx, request, source)
        except SipSyntaxError as exc:
            self._answer_failure(tx, request, exc.status, f"Bad Request ({exc.reason})"[:120])
        except SdpError as exc:
            log.info("%s with an unusable SDP body (Call-ID %r): %s", request.method,
                     request.call_id[:80], str(exc)[:120])
            self._answer_failure(tx, request, 488, None)
        except Exception:
            log.exception("internal error handling %s (Call-ID %r) from %s:%s: answering 500",
                          request.method[:20], request.call_id[:80], source.host, source.port)
            self._answer_failure(tx, request, 500, None)

    def _answer_failure(self, tx: str, request: Request, status: int, reason: str | None) -> None:
        if not tx or not self.endpoint.layer.awaiting_final(tx):
            return  # an ACK (no transaction), or the final response already went out
        try:
            self._reply(tx, request, status, reason=reason)
        except Exception:  # cannot even build a response from this request: say so, loudly
            log.exception("cannot answer %s (Call-ID %r) with %s", request.method[:20],
                          request.call_id[:80], status)

    def _handle(self, tx: str, request: Request, source: Peer) -> None:
        method = request.method
        if method == "ACK":
            return  # ACK for a 2xx is matched by the transaction layer (AckReceived)
        if method not in KNOWN_METHODS:
            self._reply(tx, request, 501, headers=[("Allow", ALLOW)])
            return
        if not request.uri.lower().startswith(("sip:", "sips:")):
            self._reply(tx, request, 416)  # RFC 3261 §8.2.2.1
            return
        unsupported = [t for t in request.headers.values("Require")
                       if t and t not in SUPPORTED_EXTENSIONS]
        if unsupported and method != "CANCEL":
            # RFC 3261 §8.2.2.3: we answer as the UAS, so every Require tag applies.
            self._reply(tx, request, 420, headers=[("Unsupported", ", ".join(unsupported))])
            return
        if method == "BYE":
            self._bye(tx, request)
        elif method == "OPTIONS":
            self._reply(tx, request, 200, headers=[
                ("Allow", ALLOW), ("Accept", "application/sdp")])
        elif method == "REGISTER":
            self._register(tx, request, source)
        elif method == "INVITE":
            self._invite(tx, request, source)
        elif method == "INFO":
            self._reply(tx, request, 200 if self._call_for(request) else 481)
        elif method == "REFER":
            self._refer(tx, request)
        elif method == "SUBSCRIBE":
            user = self._authenticate(tx, request, source)  # whose lamp: the digest user's
            if user is not None:
                self.mwi.subscribe(tx, request, source, user)
        else:
            self._reply(tx, request, 405, headers=[("Allow", ALLOW)])

    def on_cancel(self, invite_tx: str, request: Request) -> None:
        call = self._by_invite_tx.get(invite_tx)
        if call is None:
            return
        if not call.answered:
            call.leg.reject(487)
            call.remote_hangup("caller", "CANCEL before answer", 487)

    def on_ack(self, tx: str, request: Request) -> None:
        call = self._by_invite_tx.get(tx)
        if call is not None:
            call.note("sip", {"received": "ACK"})
            call.leg.on_ack()  # a hang-up that came first sends its BYE now

    def on_response(self, tx: str, response: Response) -> None:
        if self.trunks is not None and self.trunks.on_response(tx, response):
            return
        if response.status >= 200 and self.mwi.on_response(tx, response.status):
            return
        leg = self._client_legs.get(tx)
        if leg is not None:
            leg.on_response(tx, response)

    def on_timeout(self, tx: str, method: str) -> None:
        if self.trunks is not None and self.trunks.on_timeout(tx, method):
            return
        leg = self._client_legs.get(tx)
        if leg is not None:
            leg.on_timeout(tx, method)
            return
        call = self._by_invite_tx.get(tx)
        if call is not None and method == "ACK":
            # RFC 3261 §13.3.1.4: no ACK for our 2xx within 64*T1 — end the dialog with BYE.
            call.leg.ack_timed_out()
            call.remote_hangup("switch", "no ACK for 200 OK", 408)

    # -- methods ------------------------------------------------------------------------------

    def _call_for(self, request: Request) -> Call | None:
        to_tag = parse_name_addr(request.headers.get("To") or "").tag
        from_tag = parse_name_addr(request.headers.get("From") or "").tag
        for call in self._by_sip_call_id.get(request.call_id, ()):
            dialog = call.leg.dialog
            if dialog is None:
                continue
            # pyVoIP sends a random To tag in ACK/BYE (docs/peers.md §1c): fall back to the From tag.
            if to_tag == dialog.local_tag or from_tag == dialog.remote_tag:
                return call
        return None

    # -- LegHost: dialled legs ------------------------------------------------------------

    def watch_client_tx(self, tx: str, leg: OutboundLeg) -> None:
        self._client_legs[tx] = leg

    def watch_dialog(self, call_id: str, leg: OutboundLeg) -> None:
        self._out_dialogs[call_id] = leg

    def forget_leg(self, leg: OutboundLeg) -> None:
        """Stop routing to `leg` — after 32 s, so a late 2xx still gets its ACK and BYE."""

        def forget() -> None:
            for tx in [t for t, owner in self._client_legs.items() if owner is leg]:
                del self._client_legs[tx]
            if self._out_dialogs.get(leg.call_id) is leg:
                del self._out_dialogs[leg.call_id]

        asyncio.get_running_loop().call_later(32, forget)

    def _bye(self, tx: str, request: Request) -> None:
        leg = self._out_dialogs.get(request.call_id)
        if leg is not None and leg.matches(request):
            leg.on_bye(tx, request)
            return
        call = self._call_for(request)
        if call is None:
            self._reply(tx, request, 481)
            return
        self._reply(tx, request, 200)
        call.remote_hangup("caller", "BYE from caller")

    def _authenticate(self, tx: str, request: Request, source: Peer) -> str | None:
        """The authenticated extension, or None after sending 401 (challenge), 400 (broken
        Authorization) or 403 (too many failures from this source or for this user)."""
        users = {u.extension: u.password for u in self.deps.config.users}
        outcome = self.auth.check(request, source, users, self.clock())
        if isinstance(outcome, str):
            return outcome
        self._reply_later(outcome.delay, tx, request, outcome.status, headers=outcome.headers,
                          reason=outcome.reason)
        return None

    def _reply_later(self, delay: float, tx: str, request: Request, status: int, *,
                     headers: list[tuple[str, str]] | None = None,
                     reason: str | None = None) -> None:
        if delay <= 0:
            self._reply(tx, request, status, headers=headers, reason=reason)
            return
        asyncio.get_running_loop().call_later(
            delay, lambda: self._reply(tx, request, status, headers=headers, reason=reason))

    def _register(self, tx: str, request: Request, source: Peer) -> None:
        to = parse_name_addr(request.headers.get("To") or "")
        if not to.uri.lower().startswith(("sip:", "sips:")):
            raise SipSyntaxError("To of a REGISTER must be a SIP URI")  # RFC 4475 unksm2
        user = self._authenticate(tx, request, source)
        if user is None:
            return
        aor_user = parse_uri(to.uri).user_unescaped or ""
        if aor_user != user:
            self._reply(tx, request, 403, reason="Forbidden (AOR does not match credentials)")
            return
        status, headers = self.registrar.register(user, request, source)
        log.info("REGISTER %s from %s:%s -> %s", user, source.host, source.port, status)
        reply = [*headers, ("Date", _http_date())]
        # Answered once the change is in the store: a 200 means the binding survives a restart.
        task = asyncio.get_running_loop().create_task(self._registered(tx, request, status, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _registered(self, tx: str, request: Request, status: int,
                          headers: list[tuple[str, str]]) -> None:
        await self.registrar.flush()
        self._reply(tx, request, status, headers=headers)

    def _invite(self, tx: str, request: Request, source: Peer) -> None:
        if parse_name_addr(request.headers.get("To") or "").tag:
            self._reinvite(tx, request)
            return
        ctype = (request.headers.get("Content-Type") or "application/sdp").split(";")[0].strip()
        if request.body and ctype.lower() != "application/sdp":
            self._reply(tx, request, 415, headers=[("Accept", "application/sdp")])
            return
        accept = request.headers.values("Accept")
        if accept and not any(a.split(";")[0].strip().lower() in
                              ("application/sdp", "application/*", "*/*") for a in accept):
            self._reply(tx, request, 406, headers=[("Warning", '399 pbxcore "need application/sdp"')])
            return
        trunk = self.trunks.is_trunk_source(source) if self.trunks is not None else None
        if trunk is not None:
            called = called_number(trunk, request)  # the DID: which business was called
        else:
            called = parse_uri(request.uri).user_unescaped or ""
        feature = (self.deps.config.agents.feature(called) if trunk is None
                   and self.deps.acd is not None and self.deps.config.queues else None)
        access = self.deps.config.voicemail_access.code
        listen = (trunk is None and bool(access) and called == access
                  and bool(self.deps.config.voicemail))
        route = (feature_route(self.deps.config, feature[0], called) if feature is not None
                 else access_route(self.deps.config, called) if listen
                 else self.deps.config.route_for(called))
        caller_addr = parse_name_addr(request.headers.get("From") or "")
        user: str | None = None
        caller_name = caller_addr.display or ""
        if trunk is None and (route is None or not route.public):
            user = self._authenticate(tx, request, source)
            if user is None:
                return  # the 401 went out alone: pyVoIP must see it as the first response
            caller = user
            # An authenticated extension's configured name wins over the display name its
            # phone sent, as Asterisk's callerid does: the switch vouches for who is calling.
            caller_name = next((u.name for u in self.deps.config.users
                                if u.extension == user and u.name), None) or caller_name
        else:
            caller = _user_of(caller_addr.uri)
        self._reply(tx, request, 100)  # RFC 3261 §17.2.1; pyVoIP waits for a provisional
        if route is None:
            self._reply(tx, request, 404)
            return
        try:
            offer = negotiate(parse_sdp(request.body)) if request.body else None
        except SdpError:
            offer = None
        if offer is None:
            # No offer in the INVITE (offer in ACK) is not supported yet: 488 says why.
            self._reply(tx, request, 488, headers=[("Warning", '304 pbxcore "PCMU/PCMA only"')])
            return
        call = self._start_call(tx, request, source, route, caller, caller_name, called,
                                offer, user)
        if feature is not None:
            op, reason = feature
            call.flow = lambda c: run_feature(c, op, reason)
        elif listen:
            call.flow = run_menu  # the owner hears their box (call/voicemail_menu.py)

    def _start_call(self, tx: str, request: Request, source: Peer, route: Route, caller: str,
                    caller_name: str, called: str, offer: AudioAnswer,
                    user: str | None = None) -> Call:
        leg = InboundLeg(self.endpoint, tx, request, source)
        info = CallInfo(
            call_id=new_call_id(), sip_call_id=request.call_id, caller=caller,
            caller_name=caller_name, called=called,
            headers={h: v for h in HEADERS_FOR_SCRIPTS if (v := request.headers.get(h))},
            user=user,
        )
        call = Call(self.deps, leg, info, route, offer)
        self.calls[info.call_id] = call
        self.deps.stats.call_started(self.clock())
        # Not unique (pyVoIP reuses Call-IDs across runs): a list, looked up per in-dialog request.
        self._by_sip_call_id.setdefault(info.sip_call_id, []).append(call)
        self._by_invite_tx[tx] = call
        task = asyncio.create_task(self._lifecycle(call, tx), name=f"call-{info.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    def spawn(self, call: Call, body: Coroutine[Any, Any, None]) -> None:
        """Run a call the switch placed itself (call/originate.py), live in `calls` (so `pbx
        calls`, `pbx hangup` and shutdown reach it) until `body` ends."""
        self.calls[call.info.call_id] = call
        self.deps.stats.call_started(self.clock())

        async def run() -> None:
            try:
                await body
            except Exception:
                log.exception("call %s: internal error", call.info.call_id)
            finally:
                self.calls.pop(call.info.call_id, None)
                self.deps.stats.call_ended(call.route.name, call.disposition(), call.rtp_sent)
                log.info("call %s ended: %s (%s)", call.info.call_id, call.disposition(),
                         call.hangup_cause)

        task = asyncio.create_task(run(), name=f"call-{call.info.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lifecycle(self, call: Call, tx: str) -> None:
        info = call.info
        log.info("call %s: %s (%s) -> %s via %s", info.call_id, info.caller, info.caller_name,
                 info.called, call.route.script.name)
        try:
            start = CdrStart(
                call_id=info.call_id, sip_call_id=info.sip_call_id, start=info.started,
                caller=info.caller, called=info.called, caller_name=info.caller_name,
                route=str(call.route.script), node=self.deps.config.node)
            call.open_cdr(start)  # not awaited: the caller is ringing
            # An agent calling out is busy: no queue call is offered meanwhile.
            acd = self.deps.acd if call.flow is None else None
            if acd is not None and info.user is not None:
                acd.direct_call(info.user, True)
            try:
                await run_call(call)
            finally:
                if acd is not None and info.user is not None:
                    acd.direct_call(info.user, False)
        except Exception:
            log.exception("call %s: internal error", info.call_id)
        finally:
            if self.endpoint.layer.awaiting_final(tx):  # our bug: no path left it unanswered
                log.error("call %s ended without a final response: answering 500", info.call_id)
                try:
                    call.leg.reject(500)
                except Exception:
                    log.exception("call %s: cannot answer 500", info.call_id)
            self.calls.pop(info.call_id, None)
            same = self._by_sip_call_id.get(info.sip_call_id, [])
            if call in same:
                same.remove(call)
            if not same:
                self._by_sip_call_id.pop(info.sip_call_id, None)
            # Keep the INVITE mapping a little while for late CANCELs / ACK timeouts.
            asyncio.get_running_loop().call_later(64, self._by_invite_tx.pop, tx, None)
            self.deps.stats.call_ended(call.route.name, call.disposition(),
                                       call.rtp_sent)
            log.info("call %s ended: %s (%s)", info.call_id, call.disposition(),
                     call.hangup_cause)

    def _refer(self, tx: str, request: Request) -> None:
        leg = self._out_dialogs.get(request.call_id)
        if leg is not None and leg.matches(request):
            leg.on_refer(tx, request)
        elif self._call_for(request) is not None:
            # The caller's phone transferring the agent away: not offered (the call's script
            # owns the caller's side); an agent transfers the caller with REFER instead.
            self._reply(tx, request, 403, reason="Forbidden (transfer by the caller)")
        else:
            self._reply(tx, request, 481)

    def _reinvite(self, tx: str, request: Request) -> None:
        self._reply(tx, request, 100)
        leg = self._out_dialogs.get(request.call_id)
        if leg is not None and leg.matches(request):
            leg.on_reinvite(tx, request, self.deps.media_host)
            return
        call = self._call_for(request)
        if call is None or not call.answered:
            self._reply(tx, request, 481)
            return
        try:
            offer = negotiate(parse_sdp(request.body)) if request.body else call.offer
        except SdpError:
            offer = None
        if offer is None:
            self._reply(tx, request, 488)
            return
        call.offer = offer
        call.media.configure(offer)
        if call.bridge is not None:
            held = offer.hold or offer.direction in ("recvonly", "inactive")
            call.bridge.hold(call.media, held, call.hold_music())
        call.sdp_version += 1  # RFC 3264 §8: the o= line of our answer, version one higher
        sdp = build_answer(offer, local_host=self.deps.media_host,
                           local_port=call.media.local_port, session_id=call.sdp_session,
                           version=call.sdp_version)
        self.endpoint.respond(tx, make_response(
            request, 200, to_tag=call.leg.local_tag,
            headers=[("Contact", call.leg.contact), ("Allow", ALLOW),
                     ("Content-Type", "application/sdp")],
            body=sdp))

    async def shutdown(self, grace: float = 5.0) -> None:
        """Hang up every live call with BYE (or 503 if unanswered) and close their CDRs."""
        for call in list(self.calls.values()):
            call.remote_hangup("shutdown", "switch shutting down")
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)


def _user_of(uri: str) -> str:
    try:
        return parse_uri(uri).user_unescaped or ""
    except SipSyntaxError:
        return ""


def _http_date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
