"""The outbound REGISTER client, walked with stepped time against a real digest verifier.

The registrar's side is `DigestServer` (the switch's own verifier), so every Authorization the
client builds is checked for real, not compared with a stored string.
"""

from __future__ import annotations

import itertools

import pytest

from pbxcore.sip.address import parse_via
from pbxcore.sip.build import make_response
from pbxcore.sip.digest import DigestServer
from pbxcore.sip.message import Headers, Request, Response, parse_message
from pbxcore.sip.registration import (
    NETWORK_INPUTS,
    TABLE,
    Credentials,
    RegInput,
    RegistrationClient,
    RegistrationStateError,
    RegState,
    authorize,
    backoff_delay,
    refresh_delay,
)

AOR = "sip:alice@provider.test"
CONTACT = "sip:alice@192.0.2.10:5070"
USERS = {"alice": "s3cret"}
T0 = 1000.0


def client(password: str = "s3cret", expires: int = 300) -> RegistrationClient:
    counter = itertools.count()
    return RegistrationClient(AOR, "sip:provider.test", CONTACT, "alice", password, expires,
                              via="SIP/2.0/UDP 192.0.2.10:5070",
                              rand=lambda: f"r{next(counter):04d}")


def server(*, ttl: float = 300.0) -> DigestServer:
    return DigestServer("provider.test", b"k" * 32, algorithms=("MD5",), nonce_ttl=ttl)


def wire(req: Request) -> Request:
    """Through the serializer and parser, as a registrar would see it."""
    parsed = parse_message(req.to_bytes())
    assert isinstance(parsed, Request)
    return parsed


def challenge(req: Request, srv: DigestServer, now: float, *, status: int = 401,
              stale: bool = False) -> Response:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return make_response(wire(req), status, to_tag="t1",
                         headers=[(header, v) for v in srv.challenge(now, stale=stale)])


def ok(req: Request, *, contact_expires: int | None = None, expires: int | None = None) -> Response:
    headers = []
    if contact_expires is not None:
        headers.append(("Contact", f"<{CONTACT};transport=udp>;expires={contact_expires}"))
    if expires is not None:
        headers.append(("Expires", str(expires)))
    return make_response(wire(req), 200, to_tag="t1", headers=headers)


def verify(req: Request, srv: DigestServer, now: float, header: str = "Authorization") -> bool:
    msg = wire(req)
    return srv.verify(msg.headers.get(header), "REGISTER", msg.uri, USERS, now).ok


def branch(req: Request) -> str:
    return parse_via(req.headers.values("Via")[0]).branch or ""


def registered(c: RegistrationClient, srv: DigestServer, now: float = T0) -> Request:
    """start → 401 → authorised REGISTER → 200 (Contact expires=300); returns the last request."""
    first = c.start(now)
    second = c.on_response(challenge(first, srv, now), now)
    assert second is not None
    assert c.on_response(ok(second, contact_expires=300), now) is None
    return second


# ------------------------------------------------------------------------------ exchanges


def test_401_then_200_registers_with_one_call_id_and_growing_cseq() -> None:
    c, srv = client(), server()
    first = c.start(T0)
    assert (c.state, c.status) == (RegState.REGISTERING, "registering")
    assert first.method == "REGISTER" and first.uri == "sip:provider.test"
    assert "Authorization" not in first.headers
    assert (first.headers.get("Contact"), first.headers.get("Expires")) == (f"<{CONTACT}>", "300")
    assert (first.headers.get("From") or "").startswith(f"<{AOR}>;tag=")
    second = c.on_response(challenge(first, srv, T0), T0 + 0.1)
    assert second is not None
    assert verify(second, srv, T0 + 0.1)
    assert second.call_id == first.call_id and second.headers.get("From") == first.headers.get("From")
    assert (first.cseq, second.cseq) == ((1, "REGISTER"), (2, "REGISTER"))
    assert branch(first) != branch(second) and branch(second).startswith("z9hG4bK")
    assert c.on_response(ok(second, contact_expires=60, expires=999), T0 + 0.2) is None
    assert (c.state, c.status, c.granted) == (RegState.REGISTERED, "registered for 60 s", 60)
    assert c.next_deadline() == pytest.approx(T0 + 0.2 + 30)  # 60 s: refresh half-way
    assert c.bound_until == pytest.approx(T0 + 60.2)


def test_expires_header_then_requested_value_when_the_contact_has_no_expires() -> None:
    c, srv = client(), server()
    first = c.start(T0)
    c.on_response(ok(first, expires=120), T0)
    assert c.granted == 120
    c2 = client()
    c2.on_response(ok(c2.start(T0)), T0)
    assert (c2.granted, c2.next_deadline()) == (300, T0 + 240)
    del srv


def test_407_is_answered_with_proxy_authorization() -> None:
    c, srv = client(), server()
    first = c.start(T0)
    second = c.on_response(challenge(first, srv, T0, status=407), T0)
    assert second is not None and "Authorization" not in second.headers
    assert verify(second, srv, T0, "Proxy-Authorization")
    # The registrar behind the proxy challenges too: both answers travel together.
    third = c.on_response(challenge(second, srv, T0, status=401), T0)
    assert third is not None
    assert verify(third, srv, T0, "Proxy-Authorization") and verify(third, srv, T0)
    c.on_response(ok(third), T0)
    assert c.state is RegState.REGISTERED


def test_wrong_password_is_a_failure_not_a_loop() -> None:
    c, srv = client(password="wrong"), server()
    first = c.start(T0)
    second = c.on_response(challenge(first, srv, T0), T0)
    assert second is not None and not verify(second, srv, T0)
    assert c.on_response(challenge(second, srv, T0), T0) is None
    assert c.state is RegState.FAILED
    assert c.status == "401 Unauthorized: credentials for 'alice' refused, retry in 5 s"
    assert c.next_deadline() == T0 + 5


def test_stale_nonce_is_answered_again_without_failing() -> None:
    c, srv = client(), server(ttl=100)
    registered(c, srv)
    refresh_at = c.next_deadline()
    assert refresh_at == T0 + 240
    refresh = c.handle_timer(refresh_at)
    assert refresh is not None
    # Credentials are re-used with the next nonce count, but the nonce is now too old.
    assert 'nc=00000002' in (refresh.headers.get("Authorization") or "")
    assert srv.verify(wire(refresh).headers.get("Authorization"), "REGISTER", refresh.uri,
                      USERS, refresh_at).stale
    again = c.on_response(challenge(refresh, srv, refresh_at, stale=True), refresh_at)
    assert again is not None and verify(again, srv, refresh_at)
    # Even just-computed credentials may meet a stale nonce (slow network): answer once more.
    third = c.on_response(challenge(again, srv, refresh_at, stale=True), refresh_at)
    assert third is not None and verify(third, srv, refresh_at)
    c.on_response(ok(third, contact_expires=300), refresh_at)
    assert c.state is RegState.REGISTERED and c.next_deadline() == refresh_at + 240


def test_endless_stale_challenges_end_in_failure() -> None:
    c, srv = client(), server()
    req: Request | None = c.start(T0)
    answered = 0
    while req is not None:
        req = c.on_response(challenge(req, srv, T0, stale=True), T0)
        answered += req is not None
    assert answered == 4 and c.state is RegState.FAILED
    assert c.status.startswith("401 Unauthorized: challenged again and again")


def test_refresh_before_expiry_reuses_credentials_and_resets_back_off() -> None:
    c, srv = client(), server()
    registered(c, srv)
    assert c.handle_timer(T0 + 239.9) is None and c.state is RegState.REGISTERED
    refresh = c.handle_timer(T0 + 240)
    assert refresh is not None and c.state is RegState.REGISTERING and c.status == "refreshing"
    assert refresh.cseq == (3, "REGISTER") and verify(refresh, srv, T0 + 240)
    assert c.next_deadline() is None  # nothing to time while the REGISTER is out
    c.on_response(ok(refresh, contact_expires=3600), T0 + 240.5)
    assert c.next_deadline() == pytest.approx(T0 + 240.5 + 2880)


def test_403_backs_off_5_10_20_up_to_300_and_success_resets() -> None:
    c, now = client(), T0
    req = c.start(now)
    delays = []
    for _ in range(9):
        assert c.on_response(make_response(wire(req), 403, to_tag="x"), now) is None
        assert c.state is RegState.FAILED
        deadline = c.next_deadline()
        assert deadline is not None
        delays.append(deadline - now)
        assert c.handle_timer(deadline - 0.01) is None
        now = deadline
        retry = c.handle_timer(now)
        assert retry is not None and retry.cseq[0] == req.cseq[0] + 1
        req = retry
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert c.status == "registering"
    c.on_response(ok(req), now)
    assert c.failures == 0
    assert c.status == "registered for 300 s"


def test_403_status_names_the_response() -> None:
    c = client()
    req = c.start(T0)
    c.on_response(make_response(wire(req), 403, to_tag="x"), T0)
    assert c.status == "403 Forbidden, retry in 5 s"


def test_timeout_backs_off_and_a_late_answer_is_ignored() -> None:
    c = client()
    req = c.start(T0)
    assert c.on_timeout(T0 + 32) is None
    assert (c.state, c.status, c.next_deadline()) == (
        RegState.FAILED, "no response, retry in 5 s", T0 + 37)
    assert c.on_response(ok(req), T0 + 33) is None and c.state is RegState.FAILED
    assert c.on_timeout(T0 + 34) is None and c.failures == 1  # nothing outstanding
    retry = c.handle_timer(T0 + 37)
    assert retry is not None
    c.on_timeout(T0 + 69)
    assert c.next_deadline() == T0 + 79


def test_retry_after_is_honoured_when_longer_than_the_back_off() -> None:
    c = client()
    req = c.start(T0)
    c.on_response(make_response(wire(req), 503, to_tag="x",
                                 headers=[("Retry-After", "120 (maintenance)")]), T0)
    assert c.next_deadline() == T0 + 120 and c.status == "503 Service Unavailable, retry in 120 s"


def test_423_retries_at_once_with_min_expires() -> None:
    c, srv = client(expires=60), server()
    first = c.start(T0)
    second = c.on_response(challenge(first, srv, T0), T0)
    assert second is not None
    third = c.on_response(make_response(wire(second), 423, to_tag="x",
                                        headers=[("Min-Expires", "600")]), T0)
    assert third is not None and third.headers.get("Expires") == "600"
    assert verify(third, srv, T0) and c.state is RegState.REGISTERING
    # A challenge after a 423 is still answerable (the credentials were not refused).
    fourth = c.on_response(challenge(third, srv, T0), T0)
    assert fourth is not None and fourth.headers.get("Expires") == "600"
    c.on_response(ok(fourth), T0)
    assert c.granted == 600 and c.expires == 600


@pytest.mark.parametrize("min_expires", [None, "30", "60", "junk", "86401", "999999"])
def test_423_without_a_usable_min_expires_is_a_failure(min_expires: str | None) -> None:
    c = client(expires=60)  # "60": what we sent already, retrying it would loop
    req = c.start(T0)
    headers = [] if min_expires is None else [("Min-Expires", min_expires)]
    assert c.on_response(make_response(wire(req), 423, to_tag="x", headers=headers), T0) is None
    assert c.state is RegState.FAILED
    assert c.status.startswith("423 Interval Too Brief without a usable Min-Expires")


def test_423_up_to_a_day_is_followed() -> None:
    c = client(expires=60)
    req = c.start(T0)
    retry = c.on_response(make_response(wire(req), 423, to_tag="x",
                                        headers=[("Min-Expires", "86400")]), T0)
    assert retry is not None and retry.headers.get("Expires") == "86400"


def test_the_register_request_carries_max_forwards_and_user_agent() -> None:
    req = wire(client().start(T0))
    assert (req.headers.get("Max-Forwards"), req.headers.get("User-Agent")) == ("70", "pbxcore")


def test_a_3xx_answer_is_a_failure_not_a_registration() -> None:
    c = client()
    req = c.start(T0)
    assert c.on_response(make_response(wire(req), 300, to_tag="x"), T0) is None
    assert c.state is RegState.FAILED and c.status.startswith("300 ")


def test_stray_responses_are_ignored() -> None:
    c = client()
    req = c.start(T0)
    trying = make_response(wire(req), 100)
    assert c.on_response(trying, T0) is None and c.state is RegState.REGISTERING
    other = ok(req)
    other.headers.set("CSeq", "7 REGISTER")
    assert c.on_response(other, T0) is None
    other = ok(req)
    other.headers.set("Call-ID", "someone-else")
    assert c.on_response(other, T0) is None
    assert c.state is RegState.REGISTERING
    assert c.on_response(ok(req), T0) is None and c.state is RegState.REGISTERED


def test_stop_unregisters_with_expires_zero() -> None:
    c, srv = client(), server()
    registered(c, srv)
    bye = c.stop(T0 + 10)
    assert bye is not None and bye.headers.get("Expires") == "0"
    assert verify(bye, srv, T0 + 10) and c.state is RegState.UNREGISTERING
    assert c.next_deadline() is None
    assert c.stop(T0 + 10) is None  # already on its way
    again = c.on_response(challenge(bye, srv, T0 + 10, stale=True), T0 + 10)
    assert again is not None and again.headers.get("Expires") == "0"
    c.on_response(ok(again), T0 + 11)
    assert (c.state, c.status, c.bound_until) == (RegState.UNREGISTERED, "unregistered", None)
    assert client().stop(T0) is None  # never started: nothing to remove


def test_stop_while_registering_supersedes_the_outstanding_request() -> None:
    c = client()
    first = c.start(T0)
    bye = c.stop(T0)
    assert bye is not None and bye.cseq == (2, "REGISTER")
    assert c.on_response(ok(first), T0) is None and c.state is RegState.UNREGISTERING
    c.on_timeout(T0 + 32)
    assert c.state is RegState.UNREGISTERED


def test_schedules() -> None:
    assert [refresh_delay(g) for g in (60, 100, 300, 3600)] == [30, 70, 240, 2880]
    assert [backoff_delay(n) for n in (1, 2, 3, 7, 100)] == [5, 10, 20, 300, 300]


# ------------------------------------------------------------------------------ the table

S, I = RegState, RegInput  # noqa: E741
EXPECTED: dict[tuple[RegState, RegInput], RegState] = {
    # Transcribed from the module docstring and RFC 3261 §10.2, not copied from TABLE.
    (S.UNREGISTERED, I.START): S.REGISTERING,
    (S.UNREGISTERED, I.STOP): S.UNREGISTERED,
    (S.REGISTERING, I.CHALLENGE): S.REGISTERING,
    (S.REGISTERING, I.OK): S.REGISTERED,
    (S.REGISTERING, I.TOO_BRIEF): S.REGISTERING,
    (S.REGISTERING, I.FAILURE): S.FAILED,
    (S.REGISTERING, I.TIMEOUT): S.FAILED,
    (S.REGISTERING, I.STOP): S.UNREGISTERING,
    (S.REGISTERED, I.REFRESH_TIMER): S.REGISTERING,
    (S.REGISTERED, I.STOP): S.UNREGISTERING,
    (S.FAILED, I.RETRY_TIMER): S.REGISTERING,
    (S.FAILED, I.STOP): S.UNREGISTERING,
    (S.UNREGISTERING, I.CHALLENGE): S.UNREGISTERING,
    (S.UNREGISTERING, I.OK): S.UNREGISTERED,
    (S.UNREGISTERING, I.TOO_BRIEF): S.UNREGISTERED,
    (S.UNREGISTERING, I.FAILURE): S.UNREGISTERED,
    (S.UNREGISTERING, I.TIMEOUT): S.UNREGISTERED,
    (S.UNREGISTERING, I.STOP): S.UNREGISTERING,
}


def in_state(state: RegState) -> RegistrationClient:
    c = client()
    if state is S.UNREGISTERED:
        return c
    req = c.start(T0)
    if state is S.REGISTERED or state is S.UNREGISTERING:
        c.on_response(ok(req), T0)
    if state is S.FAILED:
        c.on_response(make_response(wire(req), 500, to_tag="x"), T0)
    if state is S.UNREGISTERING:
        c.stop(T0)
    assert c.state is state
    return c


@pytest.mark.parametrize("state", list(RegState))
@pytest.mark.parametrize("inp", list(RegInput))
def test_every_state_input_pair(state: RegState, inp: RegInput) -> None:
    c = in_state(state)
    assert ((state, inp) in TABLE) == ((state, inp) in EXPECTED)
    c._new_challenge = ("Authorization", server().challenge(T0)[0])
    c._min_expires = 3600
    resp = Response(200, "OK", Headers([("Call-ID", c.call_id), ("CSeq", "1 REGISTER")]))
    if (state, inp) not in EXPECTED:
        if inp in NETWORK_INPUTS:
            assert c._fire(inp, T0 + 1, resp) is None and c.state is state
        else:
            with pytest.raises(RegistrationStateError):
                c._fire(inp, T0 + 1, resp)
        return
    out = c._fire(inp, T0 + 1, resp)
    assert c.state is EXPECTED[(state, inp)]
    # A request goes out on the way into REGISTERING or UNREGISTERING, and for each challenge.
    sends = (c.state is S.REGISTERING or inp is I.CHALLENGE
             or (c.state is S.UNREGISTERING and state is not S.UNREGISTERING))
    assert (out is not None) == sends
    if out is not None:
        expires = "0" if c.state is S.UNREGISTERING else str(c.expires)
        assert out.headers.get("Expires") == expires
    # A deadline exactly when something waits for time to pass.
    assert (c.next_deadline() is not None) == (c.state in (S.REGISTERED, S.FAILED))


# ------------------------------------------------------------------------------ authorize()


def invite() -> Request:
    h = Headers([
        ("Via", "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKfirst;rport"),
        ("Max-Forwards", "70"), ("From", f"<{AOR}>;tag=f1"), ("To", "<sip:5551234@provider.test>"),
        ("Call-ID", "call-1"), ("CSeq", "1 INVITE"), ("Content-Type", "application/sdp"),
    ])
    return Request("INVITE", "sip:5551234@provider.test", h, b"v=0\r\n")


def test_authorize_answers_a_407_on_an_invite_once() -> None:
    srv, req = server(), invite()
    resp = make_response(req, 407, to_tag="p", headers=[
        ("Proxy-Authenticate", srv.challenge(T0)[0])])
    again = authorize(req, resp, Credentials("alice", "s3cret"), rand=lambda: "abc")
    assert again is not None
    assert again.cseq == (2, "INVITE") and again.call_id == "call-1" and again.body == b"v=0\r\n"
    assert again.headers.get("From") == f"<{AOR}>;tag=f1" and again.headers.get("To") == req.headers.get("To")
    assert parse_via(again.headers.values("Via")[0]).branch == "z9hG4bKabc"
    assert parse_via(again.headers.values("Via")[0]).rport == ""
    assert srv.verify(wire(again).headers.get("Proxy-Authorization"), "INVITE", again.uri, USERS,
                      T0).ok
    # The same realm challenging the answer again: the password is wrong, give up.
    assert authorize(again, make_response(again, 407, to_tag="p", headers=[
        ("Proxy-Authenticate", srv.challenge(T0)[0])]), Credentials("alice", "s3cret")) is None
    # ...unless the nonce was only stale: one answer replaces the other.
    third = authorize(again, make_response(again, 407, to_tag="p", headers=[
        ("Proxy-Authenticate", srv.challenge(T0, stale=True)[0])]), Credentials("alice", "s3cret"))
    assert third is not None and len(third.headers.get_all("Proxy-Authorization")) == 1


def test_authorize_refuses_what_it_cannot_answer() -> None:
    req = invite()
    creds = Credentials("alice", "s3cret")
    assert authorize(req, make_response(req, 486), creds) is None
    basic = make_response(req, 401, headers=[("WWW-Authenticate", 'Basic realm="x"')])
    assert authorize(req, basic, creds) is None
    assert "s3cret" not in repr(creds)
