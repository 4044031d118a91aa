"""SIP transactions (RFC 3261 §17, with the RFC 6026 Accepted state), sans-IO.

Theory of operation: `TransactionLayer` owns every client and server transaction of one node.
The I/O adapter feeds it parsed messages with their source `Peer` and the current time, asks
`next_deadline()` when to call `handle_timer(now)`, and carries out the outputs: `Send` goes to
the transport, everything else to the transaction user (TU).  The layer never reads a clock.

Each of the four transaction kinds is a table `(state, input) -> (effects, next_state)` using the
RFC's state names (`TABLES`).  Inputs are a retransmitted request or an ACK from the network, a
response from the network (client side), a response from the TU (server side), or a timer.  A
network input missing from a table is absorbed silently (a stray or late retransmission); a TU or
timer input missing from a table is our own bug and raises `TransactionStateError`.

Matching (§17.2.3) is on branch + sent-by + method + CSeq number, because pyVoIP re-sends an
INVITE after a 401 with the same branch and CSeq+1 and reuses the INVITE's branch for BYE
(docs/peers.md §1c).  Requests without an RFC 3261 branch (none, or exactly the magic cookie, RFC 4475
§3.2.1) fall back to the RFC 2543 rules.  An ACK for a 2xx is matched to its INVITE transaction by
Call-ID + CSeq number, whatever its branch and To tag (pyVoIP puts a random To tag in it).

The From tag and Call-ID are part of the key too (the §8.2.2.2 request identity): a restarted
pyVoIP reuses branch, Call-ID and CSeq with a new From tag, and that is a new request.

Deliberate departures, each so the TU stays simple: the INVITE server transaction sends
100 Trying at once, answers CANCEL itself (§9.2) and retransmits its 2xx until the ACK
(the UAS core's job in §13.3.1.4).  Responses always go back to the request's source address
(§18.2.2 with RFC 3581 symmetric routing), never to a host taken from a Via.
"""

from __future__ import annotations

import enum
import heapq
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from pbxcore.sip.address import Via, parse_via
from pbxcore.sip.build import MAGIC_COOKIE, build_ack_for_non2xx, header_tag, make_response
from pbxcore.sip.message import Headers, Request, Response, SipSyntaxError, split_list
from pbxcore.sip.peer import Peer

# --------------------------------------------------------------------------------------------
# Outputs (STYLE.md rule 4)


@dataclass(frozen=True)
class Send:
    """Hand a message to the transport."""

    message: Request | Response
    """The message to serialize and send."""
    peer: Peer
    """Where to send it: the request's source for responses, the destination for requests."""


@dataclass(frozen=True)
class RequestReceived:
    """A new request for the TU (not a retransmission)."""

    server_tx: str
    """Transaction to answer with `send_response`; "" for an ACK matching no transaction."""
    request: Request
    """The request, its top Via stamped with received/rport (§18.2.1, RFC 3581)."""
    source: Peer
    """Where it came from."""


@dataclass(frozen=True)
class CancelReceived:
    """A CANCEL for an INVITE not yet finally answered; the layer already sent 200 to it."""

    invite_tx: str
    """The INVITE server transaction to answer with 487 Request Terminated (§9.2)."""
    request: Request
    """The CANCEL request."""


@dataclass(frozen=True)
class AckReceived:
    """The first ACK for a 2xx of an INVITE server transaction: the dialog is confirmed."""

    server_tx: str
    """The INVITE server transaction the 2xx was sent on."""
    request: Request
    """The ACK (it may carry an SDP answer)."""


@dataclass(frozen=True)
class ResponseReceived:
    """A response for a client transaction (every 2xx to an INVITE, retransmissions included)."""

    client_tx: str
    """The client transaction from `send_request`."""
    response: Response
    """The response."""


@dataclass(frozen=True)
class TimedOut:
    """A transaction gave up: Timer B, F, H, or no ACK for a 2xx by Timer L."""

    tx: str
    """The transaction."""
    method: str
    """The transaction's method, or "ACK" when a 2xx was never acknowledged (TU sends BYE)."""


@dataclass(frozen=True)
class TransactionTerminated:
    """The transaction reached Terminated and is forgotten."""

    tx: str
    """The transaction."""


TxOutput = (
    Send | RequestReceived | CancelReceived | AckReceived | ResponseReceived | TimedOut
    | TransactionTerminated
)


class TransactionStateError(RuntimeError):
    """Our own bug: the TU did something its transaction's state does not allow."""


# --------------------------------------------------------------------------------------------
# The state machines as data (STYLE.md rule 3)


class Kind(enum.Enum):
    INVITE_CLIENT = "INVITE client"  # §17.1.1, RFC 6026 §7.2
    NON_INVITE_CLIENT = "non-INVITE client"  # §17.1.2
    INVITE_SERVER = "INVITE server"  # §17.2.1, RFC 6026 §7.1
    NON_INVITE_SERVER = "non-INVITE server"  # §17.2.2


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    REQUEST = "request retransmission"
    ACK = "ACK"
    TU_1XX = "TU sends 1xx"
    TU_2XX = "TU sends 2xx"
    TU_FINAL = "TU sends 3xx-6xx"
    R_1XX = "1xx received"
    R_2XX = "2xx received"
    R_FINAL = "3xx-6xx received"
    A = "Timer A"
    B = "Timer B"
    D = "Timer D"
    E = "Timer E"
    F = "Timer F"
    G = "Timer G"  # also the 2xx retransmission of the Accepted state (§13.3.1.4)
    H = "Timer H"
    I = "Timer I"  # noqa: E741 - the RFC's name
    J = "Timer J"
    K = "Timer K"
    L = "Timer L"
    M = "Timer M"


_SERVER_KINDS = frozenset({Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER})
TIMERS = frozenset({Input.A, Input.B, Input.D, Input.E, Input.F, Input.G, Input.H, Input.I,
                    Input.J, Input.K, Input.L, Input.M})
NETWORK_INPUTS = frozenset({Input.REQUEST, Input.ACK, Input.R_1XX, Input.R_2XX, Input.R_FINAL})
RETRANSMIT_TIMERS = frozenset({Input.A, Input.E, Input.G})


class Fx(enum.Enum):
    SEND = "remember the TU's response as the current message and transmit it"
    TRANSMIT = "transmit the current message (server: last response; client: the request)"
    TO_TU = "pass the response to the TU"
    ACK_TO_TU = "AckReceived, the first time only"
    SEND_ACK = "send the ACK for the non-2xx final response (built once, §17.1.1.3)"
    TIMEOUT = "TimedOut(tx, method)"
    TIMEOUT_UNACKED = "TimedOut(tx, 'ACK') unless an ACK came"
    BACKOFF = "re-arm the retransmit timer that fired: A doubles, E and G double up to T2"
    E_AT_T2 = "re-arm Timer E at T2 (§17.1.2.2 Proceeding)"
    STOP_RETRANSMIT = "disarm Timers A, E, G"
    STOP_ALL = "disarm every timer"


@dataclass(frozen=True)
class Arm:
    """Effect: arm a timer with its initial value (retransmit timers only on unreliable)."""

    timer: Input


Effect = Fx | Arm
Row = tuple[tuple[Effect, ...], State]
S, I = State, Input  # noqa: E741 - short names keep the table rows on one line
_TO_COMPLETED_CLIENT: Row = ((Fx.STOP_ALL, Fx.TO_TU, Arm(I.K)), S.COMPLETED)

INITIAL: dict[Kind, Row] = {
    Kind.INVITE_CLIENT: ((Fx.TRANSMIT, Arm(I.A), Arm(I.B)), S.CALLING),
    Kind.NON_INVITE_CLIENT: ((Fx.TRANSMIT, Arm(I.E), Arm(I.F)), S.TRYING),
    Kind.INVITE_SERVER: ((), S.PROCEEDING),  # the layer then sends 100 Trying as TU_1XX
    Kind.NON_INVITE_SERVER: ((), S.TRYING),
}

TABLES: dict[Kind, dict[tuple[State, Input], Row]] = {
    Kind.INVITE_CLIENT: {
        (S.CALLING, I.A): ((Fx.TRANSMIT, Fx.BACKOFF), S.CALLING),
        (S.CALLING, I.B): ((Fx.STOP_ALL, Fx.TIMEOUT), S.TERMINATED),
        (S.CALLING, I.R_1XX): ((Fx.STOP_ALL, Fx.TO_TU), S.PROCEEDING),
        (S.CALLING, I.R_2XX): ((Fx.STOP_ALL, Fx.TO_TU, Arm(I.M)), S.ACCEPTED),
        (S.CALLING, I.R_FINAL): ((Fx.STOP_ALL, Fx.SEND_ACK, Fx.TO_TU, Arm(I.D)), S.COMPLETED),
        (S.PROCEEDING, I.R_1XX): ((Fx.TO_TU,), S.PROCEEDING),
        (S.PROCEEDING, I.R_2XX): ((Fx.TO_TU, Arm(I.M)), S.ACCEPTED),
        (S.PROCEEDING, I.R_FINAL): ((Fx.SEND_ACK, Fx.TO_TU, Arm(I.D)), S.COMPLETED),
        (S.COMPLETED, I.R_FINAL): ((Fx.SEND_ACK,), S.COMPLETED),  # absorb, re-ACK
        (S.COMPLETED, I.D): ((), S.TERMINATED),
        (S.ACCEPTED, I.R_2XX): ((Fx.TO_TU,), S.ACCEPTED),  # RFC 6026: TU ACKs each 2xx
        (S.ACCEPTED, I.M): ((), S.TERMINATED),
    },
    Kind.NON_INVITE_CLIENT: {
        (S.TRYING, I.E): ((Fx.TRANSMIT, Fx.BACKOFF), S.TRYING),
        (S.TRYING, I.F): ((Fx.STOP_ALL, Fx.TIMEOUT), S.TERMINATED),
        (S.TRYING, I.R_1XX): ((Fx.TO_TU,), S.PROCEEDING),
        (S.TRYING, I.R_2XX): _TO_COMPLETED_CLIENT,
        (S.TRYING, I.R_FINAL): _TO_COMPLETED_CLIENT,
        (S.PROCEEDING, I.E): ((Fx.TRANSMIT, Fx.E_AT_T2), S.PROCEEDING),
        (S.PROCEEDING, I.F): ((Fx.STOP_ALL, Fx.TIMEOUT), S.TERMINATED),
        (S.PROCEEDING, I.R_1XX): ((Fx.TO_TU,), S.PROCEEDING),
        (S.PROCEEDING, I.R_2XX): _TO_COMPLETED_CLIENT,
        (S.PROCEEDING, I.R_FINAL): _TO_COMPLETED_CLIENT,
        (S.COMPLETED, I.K): ((), S.TERMINATED),
    },
    Kind.INVITE_SERVER: {
        (S.PROCEEDING, I.REQUEST): ((Fx.TRANSMIT,), S.PROCEEDING),
        (S.PROCEEDING, I.TU_1XX): ((Fx.SEND,), S.PROCEEDING),
        (S.PROCEEDING, I.TU_2XX): ((Fx.SEND, Arm(I.G), Arm(I.L)), S.ACCEPTED),
        (S.PROCEEDING, I.TU_FINAL): ((Fx.SEND, Arm(I.G), Arm(I.H)), S.COMPLETED),
        (S.COMPLETED, I.REQUEST): ((Fx.TRANSMIT,), S.COMPLETED),
        (S.COMPLETED, I.G): ((Fx.TRANSMIT, Fx.BACKOFF), S.COMPLETED),
        (S.COMPLETED, I.H): ((Fx.STOP_ALL, Fx.TIMEOUT), S.TERMINATED),
        (S.COMPLETED, I.ACK): ((Fx.STOP_ALL, Arm(I.I)), S.CONFIRMED),
        (S.CONFIRMED, I.I): ((), S.TERMINATED),
        (S.ACCEPTED, I.REQUEST): ((Fx.TRANSMIT,), S.ACCEPTED),
        (S.ACCEPTED, I.ACK): ((Fx.STOP_RETRANSMIT, Fx.ACK_TO_TU), S.ACCEPTED),
        (S.ACCEPTED, I.TU_2XX): ((Fx.SEND,), S.ACCEPTED),  # RFC 6026 §8.5
        (S.ACCEPTED, I.G): ((Fx.TRANSMIT, Fx.BACKOFF), S.ACCEPTED),
        (S.ACCEPTED, I.L): ((Fx.STOP_ALL, Fx.TIMEOUT_UNACKED), S.TERMINATED),
    },
    Kind.NON_INVITE_SERVER: {
        (S.TRYING, I.TU_1XX): ((Fx.SEND,), S.PROCEEDING),
        (S.TRYING, I.TU_2XX): ((Fx.SEND, Arm(I.J)), S.COMPLETED),
        (S.TRYING, I.TU_FINAL): ((Fx.SEND, Arm(I.J)), S.COMPLETED),
        (S.PROCEEDING, I.REQUEST): ((Fx.TRANSMIT,), S.PROCEEDING),
        (S.PROCEEDING, I.TU_1XX): ((Fx.SEND,), S.PROCEEDING),
        (S.PROCEEDING, I.TU_2XX): ((Fx.SEND, Arm(I.J)), S.COMPLETED),
        (S.PROCEEDING, I.TU_FINAL): ((Fx.SEND, Arm(I.J)), S.COMPLETED),
        (S.COMPLETED, I.REQUEST): ((Fx.TRANSMIT,), S.COMPLETED),
        (S.COMPLETED, I.J): ((), S.TERMINATED),
    },
}
del S, I


def _stamp_via(req: Request, via: Via, source: Peer) -> Request:
    """§18.2.1 `received` and RFC 3581 `rport` on the top Via, as the request is received.

    RFC 3581 §4: with rport, `received` is added even when it equals the sent-by host.
    """
    if via.rport is None and via.host.lower() == source.host.lower():
        return req
    if via.rport is None:
        stamped = str(via.with_params(received=source.host))
    else:
        stamped = str(via.with_params(received=source.host, rport=via.rport or str(source.port)))
    items: list[tuple[str, str]] = []
    done = False
    for name, value in req.headers:
        if name == "Via" and not done:
            value = ", ".join([stamped, *split_list(value)[1:]])
            done = True
        items.append((name, value))
    return Request(req.method, req.uri, Headers(items), req.body, req.version)


# --------------------------------------------------------------------------------------------
# The layer


@dataclass(eq=False)
class _Tx:
    id: str
    kind: Kind
    method: str
    request: Request
    peer: Peer
    state: State
    keys: list[object] = field(default_factory=list)
    current: Request | Response | None = None  # what TRANSMIT sends
    ack: Request | None = None  # client: ACK for a non-2xx, built once
    acked: bool = False  # server: AckReceived already emitted
    fired: float = 0.0  # interval of the timer now firing, for BACKOFF
    timers: dict[Input, tuple[float, float, int]] = field(default_factory=dict)


class TransactionLayer:
    """All transactions of one node; see the module docstring."""

    def __init__(
        self,
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        rand: Callable[[], str] = lambda: secrets.token_hex(4),
        auto_trying: bool = True,
    ) -> None:
        self.t1, self.t2, self.t4 = t1, t2, t4
        self._rand = rand
        # False: the TU sends 100 itself.  The switch does, after digest auth: pyVoIP handles a
        # 401 only as the first response to its INVITE (an immediate 401 needs no 100, §17.2.1).
        self.auto_trying = auto_trying
        self._txs: dict[str, _Tx] = {}
        self._server: dict[object, str] = {}
        self._client: dict[object, str] = {}
        self._ack_index: dict[object, str] = {}  # (Call-ID, CSeq number) -> INVITE server tx
        self._heap: list[tuple[float, int, str, Input]] = []
        self._seq = 0

    # --- public API ---------------------------------------------------------------------

    def state(self, tx: str) -> State:
        """The state of a live transaction (Terminated once forgotten)."""
        found = self._txs.get(tx)
        return found.state if found else State.TERMINATED

    def awaiting_final(self, tx: str) -> bool:
        """True while a server transaction has no final response from the TU yet (Trying or
        Proceeding, §17.2.1/§17.2.2).  An INVITE server transaction has no timer in Proceeding:
        if the TU never answers, it lives forever, so the TU's guard asks this after a failure.
        """
        found = self._txs.get(tx)
        return (found is not None and found.kind in _SERVER_KINDS
                and found.state in (State.TRYING, State.PROCEEDING))

    def server_transactions(self) -> int:
        """How many server transactions are alive (not yet Terminated): for leak checks."""
        return sum(1 for t in self._txs.values() if t.kind in _SERVER_KINDS)

    def receive_request(self, req: Request, source: Peer, now: float) -> list[TxOutput]:
        """A request from the network: a retransmission, an ACK, a CANCEL or a new request."""
        try:
            via = parse_via(req.headers.values("Via")[0])
            cseq = req.cseq[0]
        except (SipSyntaxError, IndexError):
            return [Send(make_response(req, 400, "Bad Via"), source)]  # stateless
        req = _stamp_via(req, via, source)
        if req.method == "ACK":
            return self._receive_ack(req, via, source, now)
        found = self._server.get(self._server_key(req, via, req.method, source))
        if found is not None:
            return self._step(self._txs[found], Input.REQUEST, now)
        kind = Kind.INVITE_SERVER if req.method == "INVITE" else Kind.NON_INVITE_SERVER
        tx = self._create(kind, req, source, [self._server_key(req, via, req.method, source)], now)
        if req.method == "CANCEL":
            return self._answer_cancel(tx, via, now)
        out: list[TxOutput] = []
        if kind is Kind.INVITE_SERVER:
            # pyVoIP blocks forever without a provisional response (docs/peers.md §1c row 7).
            self._ack_index[(req.call_id, cseq)] = tx.id
            tx.keys.append((req.call_id, cseq))
            if self.auto_trying:
                out += self._step(tx, Input.TU_1XX, now, make_response(req, 100))
        out.append(RequestReceived(tx.id, req, source))
        return out

    def send_response(self, server_tx: str, resp: Response, now: float) -> list[TxOutput]:
        """The TU answers a server transaction (1xx, 2xx, 3xx-6xx)."""
        tx = self._txs.get(server_tx)
        if tx is None or tx.kind not in (Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER):
            raise TransactionStateError(f"no server transaction {server_tx!r}")
        return self._step(tx, _response_input(resp, tu=True), now, resp)

    def send_request(self, req: Request, dest: Peer, now: float) -> tuple[str, list[TxOutput]]:
        """Start a client transaction; the top Via must carry a fresh branch (`new_branch`).

        An ACK has no transaction (§17.1.1.3 for 2xx): it is just sent, with tx id "".
        """
        if req.method == "ACK":
            return "", [Send(req, dest)]
        branch = parse_via(req.headers.values("Via")[0]).branch or ""
        key = (branch, req.method)
        if not branch.startswith(MAGIC_COOKIE) or key in self._client:
            raise TransactionStateError(f"send_request needs a fresh branch, got {branch!r}")
        kind = Kind.INVITE_CLIENT if req.method == "INVITE" else Kind.NON_INVITE_CLIENT
        tx = self._create(kind, req, dest, [key], now)
        tx.current = req
        return tx.id, self._apply(tx, INITIAL[kind], None, now)

    def receive_response(self, resp: Response, source: Peer, now: float) -> list[TxOutput]:
        """A response from the network; one matching no client transaction is dropped (§18.1.2)."""
        try:
            branch = parse_via(resp.headers.values("Via")[0]).branch or ""
            method = resp.cseq[1]
        except (SipSyntaxError, IndexError):
            return []
        found = self._client.get((branch, method))
        if found is None:
            return []
        return self._step(self._txs[found], _response_input(resp, tu=False), now, resp)

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next be called, or None if no timer is armed."""
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> list[TxOutput]:
        """Fire every timer due at `now`."""
        out: list[TxOutput] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if self._live(entry):
                tx = self._txs[entry[2]]
                tx.fired = tx.timers.pop(entry[3])[1]
                out += self._step(tx, entry[3], now)
        return out

    # --- matching ---------------------------------------------------------------------------

    @staticmethod
    def _server_key(req: Request, via: Via, method: str, source: Peer) -> object:
        """§17.2.3, plus the CSeq number (pyVoIP reuses branches) and the source address: a
        retransmission comes from where the original came from, while two senders that happen
        to share a branch and sent-by (RFC 4475 escnull and regescrt do) are two transactions.
        ACK/CANCEL pass "INVITE".

        Also the From tag and Call-ID, the request identity of the §8.2.2.2 merged-request rule:
        a restarted pyVoIP reuses its branch, Call-ID and CSeq but picks a new From tag, and
        without the tag its INVITE matched the previous call's transaction and got that call's
        200 OK back (issue 9 item 9).  A retransmission, an ACK for a non-2xx (§17.1.1.3) and a
        CANCEL (§9.1) all carry the original From tag and Call-ID, so they still match."""
        branch = via.branch or ""
        cseq = req.cseq[0]
        from_tag = header_tag(req.headers.get("From") or "")
        if branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
            return ("3261", branch, via.sent_by.lower(), method, cseq, source, from_tag,
                    req.call_id)
        # RFC 2543 rules (RFC 4475 §3.2.1 badbranch). The To tag is left out: the ACK has one the
        # INVITE had not, and CSeq already tells requests in one dialog apart.
        return ("2543", req.uri, from_tag, req.call_id, cseq, via.sent_by.lower(), method, source)

    def _receive_ack(self, req: Request, via: Via, source: Peer, now: float) -> list[TxOutput]:
        found = self._server.get(self._server_key(req, via, "INVITE", source))
        if found is None:
            # ACK for a 2xx: new branch, and from pyVoIP a random To tag (docs/peers.md §1c row 3).
            found = self._ack_index.get((req.call_id, req.cseq[0]))
        if found is None:
            return [RequestReceived("", req, source)]  # no transaction: the TU may ignore it
        return self._step(self._txs[found], Input.ACK, now, req)

    def _answer_cancel(self, tx: _Tx, via: Via, now: float) -> list[TxOutput]:
        """§9.2: 200 if the CANCEL matches an INVITE, else 481; 487 is the TU's to send."""
        invite_id = self._server.get(self._server_key(tx.request, via, "INVITE", tx.peer))
        invite = self._txs.get(invite_id) if invite_id else None
        if invite is None:
            return self._step(tx, Input.TU_FINAL, now, make_response(tx.request, 481))
        last = invite.current
        tag = header_tag(last.headers.get("To") or "") if isinstance(last, Response) else None
        ok = make_response(tx.request, 200, to_tag=tag or self._rand())
        out = self._step(tx, Input.TU_2XX, now, ok)
        if invite.state is State.PROCEEDING:
            out.append(CancelReceived(invite.id, tx.request))
        return out

    # --- the interpreter of the tables ----------------------------------------------------

    def _create(self, kind: Kind, req: Request, peer: Peer, keys: list[object], now: float) -> _Tx:
        self._seq += 1
        prefix = "c" if kind in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT) else "s"
        tx = _Tx(f"{prefix}{self._seq}", kind, req.method, req, peer, INITIAL[kind][1], keys)
        self._txs[tx.id] = tx
        index = self._client if prefix == "c" else self._server
        for key in keys:
            index[key] = tx.id
        return tx

    def _step(
        self, tx: _Tx, inp: Input, now: float, msg: Request | Response | None = None
    ) -> list[TxOutput]:
        row = TABLES[tx.kind].get((tx.state, inp))
        if row is None:
            if inp in NETWORK_INPUTS:
                return []  # late or stray retransmission: absorbed
            raise TransactionStateError(f"{inp.value} in {tx.kind.value} {tx.state.value}")
        return self._apply(tx, row, msg, now, inp)

    def _apply(
        self, tx: _Tx, row: Row, msg: Request | Response | None, now: float,
        inp: Input | None = None,
    ) -> list[TxOutput]:
        effects, next_state = row
        out: list[TxOutput] = []
        immediate: list[Input] = []
        for fx in effects:
            if isinstance(fx, Arm):
                if self._arm(tx, fx.timer, self._initial(fx.timer, tx.peer.reliable), now):
                    immediate.append(fx.timer)
            elif fx is Fx.SEND:
                tx.current = msg
                out.append(Send(_must(msg), tx.peer))
            elif fx is Fx.TRANSMIT:
                out.append(Send(_must(tx.current), tx.peer))
            elif fx is Fx.TO_TU:
                assert isinstance(msg, Response)
                out.append(ResponseReceived(tx.id, msg))
            elif fx is Fx.ACK_TO_TU:
                if not tx.acked:
                    tx.acked = True
                    assert isinstance(msg, Request)
                    out.append(AckReceived(tx.id, msg))
            elif fx is Fx.SEND_ACK:
                if tx.ack is None:
                    assert isinstance(msg, Response)
                    tx.ack = build_ack_for_non2xx(tx.request, msg)
                out.append(Send(tx.ack, tx.peer))
            elif fx is Fx.TIMEOUT:
                out.append(TimedOut(tx.id, tx.method))
            elif fx is Fx.TIMEOUT_UNACKED:
                if not tx.acked:
                    out.append(TimedOut(tx.id, "ACK"))
            elif fx is Fx.BACKOFF:
                assert inp in RETRANSMIT_TIMERS
                grown = tx.fired * 2 if inp is Input.A else min(tx.fired * 2, self.t2)
                self._arm(tx, inp, grown, now)
            elif fx is Fx.E_AT_T2:
                self._arm(tx, Input.E, self.t2, now)
            elif fx is Fx.STOP_RETRANSMIT:
                for timer in RETRANSMIT_TIMERS:
                    tx.timers.pop(timer, None)
            elif fx is Fx.STOP_ALL:
                tx.timers.clear()
        tx.state = next_state
        if next_state is State.TERMINATED:
            self._forget(tx)
            out.append(TransactionTerminated(tx.id))
            return out
        for timer in immediate:  # zero-length timers on reliable transports
            if tx.state is not State.TERMINATED and tx.timers.pop(timer, None) is not None:
                out += self._step(tx, timer, now)
        return out

    def _initial(self, timer: Input, reliable: bool) -> float | None:
        """Initial timer values (§17, table 4; RFC 6026 for L and M); None = not on reliable."""
        if timer in RETRANSMIT_TIMERS:
            return None if reliable else self.t1
        if timer in (Input.I, Input.K):
            return 0.0 if reliable else self.t4
        if timer is Input.J:
            return 0.0 if reliable else 64 * self.t1
        if timer is Input.D:
            return 0.0 if reliable else max(32.0, 64 * self.t1)
        return 64 * self.t1  # B, F, H, L, M: also on reliable transports

    def _arm(self, tx: _Tx, timer: Input, interval: float | None, now: float) -> bool:
        """Arm `timer`; True if it is zero-length and must fire right away."""
        if interval is None:
            return False
        self._seq += 1
        tx.timers[timer] = (now + interval, interval, self._seq)
        if interval <= 0:
            return True
        heapq.heappush(self._heap, (now + interval, self._seq, tx.id, timer))
        return False

    def _live(self, entry: tuple[float, int, str, Input]) -> bool:
        tx = self._txs.get(entry[2])
        armed = tx.timers.get(entry[3]) if tx else None
        return armed is not None and armed[2] == entry[1]

    def _forget(self, tx: _Tx) -> None:
        tx.timers.clear()
        self._txs.pop(tx.id, None)
        for key in tx.keys:
            for index in (self._server, self._client, self._ack_index):
                if index.get(key) == tx.id:
                    del index[key]


def _must(msg: Request | Response | None) -> Request | Response:
    if msg is None:
        raise TransactionStateError("no message to send")
    return msg


def _response_input(resp: Response, *, tu: bool) -> Input:
    if resp.status < 200:
        return Input.TU_1XX if tu else Input.R_1XX
    if resp.status < 300:
        return Input.TU_2XX if tu else Input.R_2XX
    return Input.TU_FINAL if tu else Input.R_FINAL
