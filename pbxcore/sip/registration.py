"""Outbound registration to a provider's registrar (RFC 3261 §10.2, §22.2), sans-IO.

Theory of operation: one `RegistrationClient` keeps one binding (our Contact under the trunk's
address-of-record) alive.  The adapter calls `start(now)` and sends the REGISTER it returns,
feeds every final response to `on_response(resp, now)` (a 1xx, or a response to an older
request, is ignored), reports a transaction time-out with `on_timeout(now)`, and calls
`handle_timer(now)` at `next_deadline()`.  Each of those may return one request to send; the
client never reads a clock and does no I/O.

The state machine is data (`TABLE`): `(state, input) -> (effects, next state)`.  A response
or time-out that the table does not list is absorbed (a late or stray answer); a local input it
does not list (start twice, a timer that cannot be armed) is our bug: `RegistrationStateError`.

Choices, each with its reason:
* One Call-ID and From tag for the life of the binding, CSeq +1 per request (§10.2: a registrar
  orders REGISTERs of one Call-ID by CSeq); a fresh branch per request (§8.1.1.7).
* 401/407 is answered with Authorization/Proxy-Authorization (§22.2).  Credentials we just
  computed that draw a new challenge without `stale=TRUE` are wrong: that is a failure, never a
  loop.  Later REGISTERs re-use the last challenge with the next nonce count (RFC 7616 §3.4),
  saving a round trip; a registrar that refuses them just challenges again, which we answer.
* The refresh goes out at 80 % of the granted time but at least 30 s before the end, and never
  earlier than half-way (a 60 s binding refreshes after 30 s).
* Failures and time-outs back off 5, 10, 20 ... 300 s (RFC 5626 §4.5 spirit: never hammer a
  registrar), or later if the registrar asks with Retry-After (§20.33).  423 Interval Too Brief
  is retried at once with the registrar's Min-Expires (§10.2.8).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pbxcore.sip.address import parse_contact_list, parse_via
from pbxcore.sip.build import new_branch
from pbxcore.sip.digest import (
    DigestParseError,
    UnsupportedChallenge,
    authorization_for,
    parse_auth_params,
    pick_challenge,
)
from pbxcore.sip.message import Headers, Request, Response, SipSyntaxError, split_list
from pbxcore.sip.numbers import UINT32_MAX, ascii_uint, clamped_uint
from pbxcore.sip.uri import parse_uri

USER_AGENT = "pbxcore"
BACKOFF_FIRST = 5.0
BACKOFF_MAX = 300.0
RETRY_AFTER_MAX = 3600.0
MAX_CHALLENGES = 4  # per attempt: stale nonces may come back, but not forever

#: Which header answers which challenge (RFC 3261 §22.2, §22.3).
ANSWER_HEADER = {401: "Authorization", 407: "Proxy-Authorization"}
CHALLENGE_HEADER = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}


class RegistrationStateError(RuntimeError):
    """Our own bug: a local input the registration's state does not allow."""


class RegState(enum.Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    UNREGISTERING = "unregistering"


class RegInput(enum.Enum):
    START = "start"
    STOP = "stop"
    CHALLENGE = "401/407 we can answer"
    OK = "2xx"
    TOO_BRIEF = "423 with a usable Min-Expires"
    FAILURE = "other final response, or a challenge we must not answer"
    TIMEOUT = "no response (Timer F)"
    REFRESH_TIMER = "time to refresh"
    RETRY_TIMER = "back-off over"


NETWORK_INPUTS = frozenset(
    {RegInput.CHALLENGE, RegInput.OK, RegInput.TOO_BRIEF, RegInput.FAILURE, RegInput.TIMEOUT}
)


class Fx(enum.Enum):
    NEW_ATTEMPT = "send a REGISTER for the configured expiry (cached credentials, if any)"
    RESEND = "send the same REGISTER again, answering the challenge or with the new expiry"
    UNREGISTER = "send a REGISTER with Expires: 0 (§10.2.2)"
    RAISE_EXPIRES = "adopt the registrar's Min-Expires"
    BIND = "record the granted expiry, reset the back-off, arm the refresh"
    BACK_OFF = "count the failure, arm the retry"
    UNBIND = "forget the binding and every timer"


Row = tuple[tuple[Fx, ...], RegState]
S, I = RegState, RegInput  # noqa: E741 - short names keep the rows on one line
_STOP_BOUND: Row = ((Fx.UNREGISTER,), S.UNREGISTERING)
_DONE: Row = ((Fx.UNBIND,), S.UNREGISTERED)

TABLE: dict[tuple[RegState, RegInput], Row] = {
    (S.UNREGISTERED, I.START): ((Fx.NEW_ATTEMPT,), S.REGISTERING),
    (S.UNREGISTERED, I.STOP): ((), S.UNREGISTERED),
    (S.REGISTERING, I.CHALLENGE): ((Fx.RESEND,), S.REGISTERING),
    (S.REGISTERING, I.OK): ((Fx.BIND,), S.REGISTERED),
    (S.REGISTERING, I.TOO_BRIEF): ((Fx.RAISE_EXPIRES, Fx.RESEND), S.REGISTERING),
    (S.REGISTERING, I.FAILURE): ((Fx.BACK_OFF,), S.FAILED),
    (S.REGISTERING, I.TIMEOUT): ((Fx.BACK_OFF,), S.FAILED),
    (S.REGISTERING, I.STOP): _STOP_BOUND,
    (S.REGISTERED, I.REFRESH_TIMER): ((Fx.NEW_ATTEMPT,), S.REGISTERING),
    (S.REGISTERED, I.STOP): _STOP_BOUND,
    (S.FAILED, I.RETRY_TIMER): ((Fx.NEW_ATTEMPT,), S.REGISTERING),
    (S.FAILED, I.STOP): _STOP_BOUND,  # an earlier binding may still be alive at the registrar
    (S.UNREGISTERING, I.CHALLENGE): ((Fx.RESEND,), S.UNREGISTERING),
    (S.UNREGISTERING, I.OK): _DONE,
    (S.UNREGISTERING, I.TOO_BRIEF): _DONE,
    (S.UNREGISTERING, I.FAILURE): _DONE,
    (S.UNREGISTERING, I.TIMEOUT): _DONE,
    (S.UNREGISTERING, I.STOP): ((), S.UNREGISTERING),
}


def refresh_delay(granted: float) -> float:
    """Seconds after a 2xx to send the refresh: 80 %, ≥ 30 s before the end, ≥ half-way."""
    return max(granted / 2, min(granted * 0.8, granted - 30))


def backoff_delay(failures: int) -> float:
    """5, 10, 20 ... seconds after the 1st, 2nd, 3rd ... failure in a row, capped at 300."""
    return min(BACKOFF_FIRST * 2.0 ** min(max(failures - 1, 0), 16), BACKOFF_MAX)


@dataclass(frozen=True)
class Credentials:
    """Who we are to the provider."""

    username: str
    """Digest user name."""
    password: str
    """Digest password (never logged)."""

    def __repr__(self) -> str:
        return f"Credentials({self.username!r}, ***)"


class RegistrationClient:
    """Keeps one binding at one registrar alive; see the module docstring."""

    def __init__(
        self,
        aor: str,
        registrar_uri: str,
        contact: str,
        username: str,
        password: str,
        expires: int,
        *,
        via: str,
        rand: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        """`via` is our sent-by part, e.g. "SIP/2.0/UDP 192.0.2.1:5060" (branch added here)."""
        self.aor, self.registrar_uri, self.contact = aor, registrar_uri, contact
        self.credentials = Credentials(username, password)
        self.expires = expires  # what we ask for; 423 raises it
        self.via = via
        self.state = RegState.UNREGISTERED
        self.status = "not registered"
        self.granted: int | None = None  # seconds the registrar granted last time
        self.bound_until: float | None = None
        self.failures = 0
        self._rand = rand
        self._call_id = f"{rand()}{rand()}"
        self._tag = rand()
        self._cseq = 0
        self._outstanding: int | None = None  # CSeq of the REGISTER awaiting its answer
        self._sent_expires = expires
        self._deadline: float | None = None
        self._challenges: dict[str, tuple[str, int]] = {}  # answer header -> (challenge, nc)
        self._fresh: set[str] = set()  # headers answered just now, in the outstanding request
        self._challenge_count = 0
        # Set by the classifier for the effects that follow.
        self._new_challenge: tuple[str, str] | None = None
        self._min_expires = 0
        self._retry_after = 0.0
        self._why = ""

    # --- public API ---------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self._call_id

    def start(self, now: float) -> Request:
        req = self._fire(RegInput.START, now)
        assert req is not None
        return req

    def stop(self, now: float) -> Request | None:
        """Remove the binding (Expires: 0); None when there is nothing to remove."""
        return self._fire(RegInput.STOP, now)

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> Request | None:
        if self._deadline is None or now < self._deadline:
            return None
        timer = RegInput.REFRESH_TIMER if self.state is RegState.REGISTERED else RegInput.RETRY_TIMER
        return self._fire(timer, now)

    def on_timeout(self, now: float, why: str = "no response") -> Request | None:
        """The outstanding REGISTER got no final response (non-INVITE Timer F, §17.1.2.2), or
        could not be sent at all (`why` says so: "cannot resolve sip.example.com")."""
        if self._outstanding is None:
            return None
        self._outstanding = None
        self._why, self._retry_after = why, 0.0
        return self._fire(RegInput.TIMEOUT, now)

    def on_response(self, resp: Response, now: float) -> Request | None:
        """A response from the registrar; returns the next REGISTER to send, if any."""
        try:
            cseq = resp.cseq
        except SipSyntaxError:
            return None
        if (resp.status < 200 or self._outstanding is None or resp.call_id != self._call_id
                or cseq != (self._outstanding, "REGISTER")):
            return None  # provisional, stray, or an answer to a request we gave up on
        self._outstanding = None
        return self._fire(self._classify(resp), now, resp)

    # --- the machine --------------------------------------------------------------------

    def _fire(self, inp: RegInput, now: float, resp: Response | None = None) -> Request | None:
        row = TABLE.get((self.state, inp))
        if row is None:
            if inp in NETWORK_INPUTS:
                return None
            raise RegistrationStateError(f"{inp.value} in state {self.state.value}")
        effects, self.state = row
        request: Request | None = None
        for fx in effects:
            request = self._apply(fx, now, resp) or request
        return request

    def _apply(self, fx: Fx, now: float, resp: Response | None) -> Request | None:
        if fx is Fx.NEW_ATTEMPT:
            self._challenge_count, self._fresh = 0, set()
            self._deadline = None
            self.status = "refreshing" if self.bound_until and self.bound_until > now else "registering"
            return self._build(self.expires)
        if fx is Fx.RESEND:
            if self._new_challenge is not None:
                header, challenge = self._new_challenge
                self._challenges[header] = (challenge, 0)
                self._fresh = {header}
                self._new_challenge = None
            return self._build(self._sent_expires)
        if fx is Fx.UNREGISTER:
            self._challenge_count, self._fresh = 0, set()
            self._deadline = None
            self.status = "unregistering"
            return self._build(0)
        if fx is Fx.RAISE_EXPIRES:
            self.expires = self._sent_expires = self._min_expires
            self._fresh = set()  # the credentials were not refused, the interval was
            return None
        if fx is Fx.BIND:
            assert resp is not None
            self.granted = _granted(resp, self.contact, self._sent_expires)
            self.bound_until = now + self.granted
            self.failures = 0
            self._deadline = now + refresh_delay(self.granted)
            self.status = f"registered for {self.granted} s"
            return None
        if fx is Fx.BACK_OFF:
            self.failures += 1
            delay = max(backoff_delay(self.failures), min(self._retry_after, RETRY_AFTER_MAX))
            self._deadline = now + delay
            self.status = f"{self._why}, retry in {delay:g} s"
            return None
        # Fx.UNBIND
        self.bound_until = self.granted = self._deadline = None
        self.status = "unregistered"
        return None

    def _classify(self, resp: Response) -> RegInput:
        self._retry_after = _retry_after(resp)
        self._why = f"{resp.status} {resp.reason}".strip()
        if 200 <= resp.status < 300:
            return RegInput.OK
        if resp.status in ANSWER_HEADER:
            return self._classify_challenge(resp)
        if resp.status == 423:
            # §20.23 delta-seconds, ASCII only (numbers.py: isdigit() lets '²' through to int()).
            min_expires = ascii_uint((resp.headers.get("Min-Expires") or "").strip(), 86400)
            if min_expires is not None and self._sent_expires < min_expires:
                self._min_expires = min_expires
                return RegInput.TOO_BRIEF
            self._why += " without a usable Min-Expires"
        return RegInput.FAILURE

    def _classify_challenge(self, resp: Response) -> RegInput:
        header = ANSWER_HEADER[resp.status]
        challenge = pick_challenge(resp.headers.get_all(CHALLENGE_HEADER[resp.status]))
        if challenge is None:
            self._why += ": no digest challenge we can answer"
            return RegInput.FAILURE
        try:
            stale = parse_auth_params(challenge)[1].get("stale", "").lower() == "true"
        except DigestParseError:  # pick_challenge already parsed it; keeps mypy honest
            stale = False
        if header in self._fresh and not stale:
            self._why += f": credentials for {self.credentials.username!r} refused"
            return RegInput.FAILURE
        self._challenge_count += 1
        if self._challenge_count > MAX_CHALLENGES:
            self._why += ": challenged again and again"
            return RegInput.FAILURE
        self._new_challenge = (header, challenge)
        return RegInput.CHALLENGE

    def _build(self, expires: int) -> Request:
        self._cseq += 1
        self._outstanding, self._sent_expires = self._cseq, expires
        h = Headers()
        h.add("Via", f"{self.via};branch={new_branch(self._rand)};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<{self.aor}>;tag={self._tag}")
        h.add("To", f"<{self.aor}>")
        h.add("Call-ID", self._call_id)
        h.add("CSeq", f"{self._cseq} REGISTER")
        h.add("Contact", f"<{self.contact}>")
        h.add("Expires", str(expires))
        for name, value in self._answers():
            h.add(name, value)
        h.add("User-Agent", USER_AGENT)
        return Request("REGISTER", self.registrar_uri, h)

    def _answers(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for header, (challenge, nc) in list(self._challenges.items()):
            try:
                value = authorization_for(
                    challenge, method="REGISTER", uri=self.registrar_uri,
                    username=self.credentials.username, password=self.credentials.password,
                    cnonce=self._rand(), nc=nc + 1,
                )
            except UnsupportedChallenge:  # pick_challenge only keeps answerable ones
                del self._challenges[header]
                continue
            self._challenges[header] = (challenge, nc + 1)
            out.append((header, value))
        return out


def _retry_after(resp: Response) -> float:
    """Retry-After seconds (§20.33: `120 (comment);duration=60`), 0 when absent or bad."""
    text = (resp.headers.get("Retry-After") or "").split("(")[0].split(";")[0].strip()
    # Clamped, never converted whole: RFC 4475 §3.1.2.5 scalarlg's 949302838503028349304023988.
    seconds = clamped_uint(text, UINT32_MAX)
    return 0.0 if seconds is None else float(seconds)


def _granted(resp: Response, contact: str, asked: int) -> int:
    """The expiry the registrar granted our Contact (§10.2.4): its `expires` parameter, else
    the Expires header, else what we asked for."""
    ours = _contact_key(contact)
    for value in resp.headers.values("Contact"):
        try:
            listed = parse_contact_list(value)
        except SipSyntaxError:
            continue
        for addr in listed if listed != "*" else []:
            text = addr.param("expires")
            granted = None if text is None else clamped_uint(text.strip(), UINT32_MAX)
            if _contact_key(addr.uri) == ours and granted is not None:
                return granted
    header = clamped_uint((resp.headers.get("Expires") or "").strip(), UINT32_MAX)
    return asked if header is None else header


def _contact_key(uri: str) -> tuple[str, str, int | None] | str:
    """user, host, port of a URI (registrars may reorder or add URI parameters)."""
    try:
        parsed = parse_uri(uri)
    except SipSyntaxError:
        return uri
    return (parsed.user or "", parsed.host.lower(), parsed.port)


def authorize(
    request: Request,
    response: Response,
    credentials: Credentials,
    *,
    rand: Callable[[], str] = lambda: secrets.token_hex(8),
) -> Request | None:
    """The request re-sent answering a 401/407 (§22.2): same Call-ID and tags, CSeq + 1, fresh
    branch, Authorization or Proxy-Authorization added.  None when it cannot be answered, or
    when `request` already carried an answer to this realm and the nonce is not stale.

    For one-shot exchanges such as an outbound INVITE challenged by the provider.
    """
    if response.status not in ANSWER_HEADER:
        return None
    header = ANSWER_HEADER[response.status]
    challenge = pick_challenge(response.headers.get_all(CHALLENGE_HEADER[response.status]))
    if challenge is None:
        return None
    params = parse_auth_params(challenge)[1]
    realm = params.get("realm", "")
    for sent in request.headers.get_all(header):
        try:
            sent_realm = parse_auth_params(sent)[1].get("realm", "")
        except DigestParseError:
            continue
        if sent_realm == realm and params.get("stale", "").lower() != "true":
            return None
    try:
        value = authorization_for(
            challenge, method=request.method, uri=request.uri, username=credentials.username,
            password=credentials.password, cnonce=rand(),
        )
    except UnsupportedChallenge:
        return None
    items: list[tuple[str, str]] = []
    for name, old in request.headers:
        if name == "Via" and not any(n == "Via" for n, _ in items):
            old = _rebranch(old, rand)
        elif name == "CSeq":
            old = f"{request.cseq[0] + 1} {request.method}"
        elif name == header and _realm_of(old) == realm:
            continue  # replaced below
        items.append((name, old))
    items.append((header, value))
    return Request(request.method, request.uri, Headers(items), request.body, request.version)


def _rebranch(via: str, rand: Callable[[], str]) -> str:
    """The top Via with a new branch parameter (a new transaction, §8.1.3.5)."""
    top, *rest = split_list(via)
    return ", ".join([str(parse_via(top).with_params(branch=new_branch(rand))), *rest])


def _realm_of(value: str) -> str | None:
    try:
        return parse_auth_params(value)[1].get("realm", "")
    except DigestParseError:
        return None


__all__: Sequence[str] = (
    "ANSWER_HEADER", "Credentials", "RegInput", "RegState", "RegistrationClient",
    "RegistrationStateError", "TABLE", "authorize", "backoff_delay", "refresh_delay",
)
