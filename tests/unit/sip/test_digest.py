"""Digest: RFC vectors, the answers real peers send, and what must fail (and how)."""

from __future__ import annotations

import hashlib

import pytest

from pbxcore.sip.digest import (
    AuthResult,
    DigestParseError,
    DigestServer,
    UnsupportedChallenge,
    authorization_for,
    digest_response,
    parse_auth_params,
    pick_challenge,
)

USERS = {"1001": "secret", "1005": "letmein"}
RURI = "sip:pbx.test"  # the Request-URI of the REGISTERs below
SECRET = b"cluster-shared-secret"


def server(**kw: object) -> DigestServer:
    return DigestServer("pbx.test", SECRET, rand=lambda: "salt", **kw)  # type: ignore[arg-type]


def nonce_of(challenge: str) -> str:
    return parse_auth_params(challenge)[1]["nonce"]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_rfc2617_3_5_vector() -> None:
    assert digest_response(
        "MD5", username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
        method="GET", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth", nc="00000001", cnonce="0a4f113b",
    ) == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_3_9_1_vectors_through_the_client(algorithm: str, expected: str) -> None:
    challenge = (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    value = authorization_for(challenge, method="GET", uri="/dir/index.html", username="Mufasa",
                              password="Circle of Life",
                              cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    scheme, p = parse_auth_params(value)
    assert scheme == "Digest" and p["response"] == expected
    assert (p["qop"], p["nc"], p["algorithm"]) == ("auth", "00000001", algorithm)
    assert p["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_challenge_offers_md5_alone_by_default() -> None:
    """Debian 12's baresip (libre 1.1.0) refuses a 401 holding any non-MD5 challenge."""
    values = server().challenge(1000.0)
    assert [parse_auth_params(v)[1]["algorithm"] for v in values] == ["MD5"]
    assert DigestServer("r", SECRET).algorithms == ("MD5",)


def test_challenge_one_value_per_algorithm_same_nonce_qop_auth() -> None:
    values = server(algorithms=("MD5", "SHA-256")).challenge(1000.0)
    assert len(values) == 2
    parsed = [parse_auth_params(v)[1] for v in values]
    assert [p["algorithm"] for p in parsed] == ["MD5", "SHA-256"]
    assert {p["nonce"] for p in parsed} == {nonce_of(values[0])}
    assert all(p["qop"] == "auth" and p["realm"] == "pbx.test" and p["opaque"] for p in parsed)
    assert "stale" not in parsed[0]
    assert parse_auth_params(server().challenge(1.0, stale=True)[0])[1]["stale"] == "TRUE"
    assert [parse_auth_params(v)[1]["algorithm"]  # order = preference (RFC 8760 §2.4)
            for v in server(algorithms=("SHA-256", "MD5")).challenge(1.0)] == ["SHA-256", "MD5"]


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_round_trip_client_to_server(algorithm: str) -> None:
    srv = server(algorithms=("MD5", "SHA-256"))
    challenge = [c for c in srv.challenge(100.0) if f"algorithm={algorithm}" in c][0]
    value = authorization_for(challenge, method="REGISTER", uri="sip:pbx.test", username="1001",
                              password="secret", cnonce="c0ffee", nc=3)
    assert srv.verify(value, "REGISTER", RURI, USERS, 101.0) == AuthResult(True, "1001", False, "ok")
    assert not srv.verify(value, "INVITE", RURI, USERS, 101.0).ok  # method is in the hash


def test_pyvoip_answer_without_qop_and_with_its_own_uri() -> None:
    """pyVoIP 1.6.8 gen_authorization: RFC 2069, uri sip:<server>;transport=UDP (§1c row 14)."""
    srv = server()
    nonce = nonce_of(srv.challenge(10.0)[-1])  # pyVoIP keeps the last WWW-Authenticate
    ha1 = md5("1001:pbx.test:secret")
    response = md5(f"{ha1}:{nonce}:{md5('REGISTER:sip:127.0.0.1;transport=UDP')}")
    value = (f'Digest username="1001",realm="pbx.test",nonce="{nonce}",'
             f'uri="sip:127.0.0.1;transport=UDP",response="{response}",algorithm=MD5')
    assert srv.verify(value, "REGISTER", "sip:127.0.0.1", USERS, 11.0).ok


def test_svcrack_qop_without_cnonce_is_rfc2069() -> None:
    srv = server()
    nonce = nonce_of(srv.challenge(10.0)[0])
    ha1 = md5("1005:pbx.test:letmein")
    response = md5(f"{ha1}:{nonce}:{md5('REGISTER:sip:127.0.0.1')}")
    value = (f'Digest username="1005", realm="pbx.test", nonce="{nonce}", '
             f'uri="sip:127.0.0.1", response="{response}", algorithm=MD5, qop=auth')
    assert srv.verify(value, "REGISTER", "sip:127.0.0.1", USERS, 11.0) == AuthResult(
        True, "1005", False, "ok")


def answer(srv: DigestServer, now: float, *, user: str = "1001", password: str = "secret",
           challenge: str | None = None) -> str:
    return authorization_for(challenge or srv.challenge(now)[0], method="REGISTER",
                             uri="sip:pbx.test", username=user, password=password, cnonce="x")


def test_stale_nonce_with_right_password_is_stale_wrong_password_is_not() -> None:
    srv = server(nonce_ttl=300.0)
    assert srv.verify(answer(srv, 0.0), "REGISTER", RURI, USERS, 301.0) == AuthResult(
        False, "1001", True, "stale nonce")
    assert not srv.verify(answer(srv, 0.0, password="x"), "REGISTER", RURI, USERS, 301.0).stale
    assert srv.verify(answer(srv, 0.0), "REGISTER", RURI, USERS, 299.0).ok


def test_nonce_from_another_secret_or_tampered_is_refused() -> None:
    """Right password, nonce not ours (another node's secret, a restart, a forged time):
    stale, so the phone retries at once with a fresh nonce instead of asking its user."""
    srv = server()
    other = DigestServer("pbx.test", b"other secret", rand=lambda: "salt")
    assert srv.verify(answer(srv, 5.0, challenge=other.challenge(5.0)[0]), "REGISTER", RURI,
                      USERS, 6.0) == AuthResult(False, "1001", True, "nonce not ours")
    challenge = srv.challenge(5.0)[0]
    nonce = nonce_of(challenge)
    issued, salt, mac = nonce.split(".")
    forged = challenge.replace(nonce, f"{int(issued, 16) + 999999:x}.{salt}.{mac}")
    assert srv.verify(answer(srv, 5.0, challenge=forged), "REGISTER", RURI, USERS,
                      6.0) == AuthResult(False, "1001", True, "nonce not ours")
    # the wrong password with a foreign nonce is a plain failure, counted
    wrong = srv.verify(answer(srv, 5.0, password="x", challenge=forged), "REGISTER", RURI,
                       USERS, 6.0)
    assert (wrong.stale, wrong.failure, wrong.reason) == (False, True, "wrong credentials")
    # any node with the same secret verifies: stateless
    twin = DigestServer("pbx.test", SECRET)
    assert twin.verify(answer(srv, 5.0), "REGISTER", RURI, USERS, 6.0).ok


def test_wrong_realm_unknown_user_and_wrong_password() -> None:
    srv = server()
    elsewhere = DigestServer("other.realm", SECRET).challenge(1.0)[0]
    assert srv.verify(answer(srv, 1.0, challenge=elsewhere), "REGISTER", RURI, USERS,
                      2.0).reason == "wrong realm"
    unknown = srv.verify(answer(srv, 1.0, user="9999"), "REGISTER", RURI, USERS, 2.0)
    wrong = srv.verify(answer(srv, 1.0, password="nope"), "REGISTER", RURI, USERS, 2.0)
    assert (unknown.ok, unknown.reason) == (wrong.ok, wrong.reason) == (False, "wrong credentials")


def test_unknown_user_costs_a_hash_like_a_known_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import pbxcore.sip.digest as digest

    calls: list[str] = []
    real = digest.digest_response

    def counting(*args: object, **kw: str) -> str:
        calls.append(str(kw["username"]))
        return real(*args, **kw)  # type: ignore[arg-type]

    srv = server()
    unknown, wrong = answer(srv, 1.0, user="9999"), answer(srv, 1.0, password="nope")
    monkeypatch.setattr(digest, "digest_response", counting)
    srv.verify(unknown, "REGISTER", RURI, USERS, 2.0)
    srv.verify(wrong, "REGISTER", RURI, USERS, 2.0)
    assert calls == ["9999", "1001"]


@pytest.mark.parametrize("value", [
    "NoOneKnowsThisScheme opaque-data=here",  # RFC 4475 §3.3.7 regaut01
    "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    'Digest username="1001", realm="pbx.test", nonce="unterminated',
    "Digest username",
    "",
    "Digest",
    'Digest username="1001", realm="pbx.test"',
    'Digest username="1001", realm="pbx.test", nonce="a.b.c", uri="x", response="y"',
    'Digest username="1001", realm="pbx.test", nonce="n", uri="x", response="y", algorithm=SHA1',
])
def test_other_schemes_and_malformed_headers_fail_without_exception(value: str) -> None:
    result = server().verify(value, "REGISTER", RURI, USERS, 1.0)
    assert not result.ok and not result.stale


def test_auth_int_and_missing_header() -> None:
    srv = server()
    value = answer(srv, 1.0).replace("qop=auth", "qop=auth-int")
    assert srv.verify(value, "REGISTER", RURI, USERS, 1.0).reason == "unsupported qop 'auth-int'"
    assert srv.verify(None, "REGISTER", RURI, USERS, 1.0) == AuthResult(False, None, False,
                                                                 "no credentials")


def test_sha256_only_server_refuses_md5() -> None:
    srv = server(algorithms=("SHA-256",))
    md5_challenge = DigestServer("pbx.test", SECRET).challenge(1.0)[0]
    assert srv.verify(answer(srv, 1.0, challenge=md5_challenge), "REGISTER", RURI, USERS,
                      1.0).reason == "unsupported algorithm 'MD5'"
    with pytest.raises(ValueError):
        DigestServer("r", SECRET, algorithms=("SHA-512-256",))


def test_parse_auth_params_quoting_and_spacing() -> None:
    scheme, p = parse_auth_params(
        'Digest  realm = "a, \\"quoted\\" b" ,NONCE=abc,  qop="auth,auth-int",stale=TRUE ')
    assert scheme == "Digest"
    assert p == {"realm": 'a, "quoted" b', "nonce": "abc", "qop": "auth,auth-int",
                 "stale": "TRUE"}
    for bad in ("", "realm=x", 'Digest realm="x', "Digest realm"):
        with pytest.raises(DigestParseError):
            parse_auth_params(bad)


def test_client_rfc2069_when_no_qop_offered_and_refusals() -> None:
    value = authorization_for('Digest realm="r", nonce="n"', method="REGISTER", uri="sip:r",
                              username="u", password="p", cnonce="c")
    p = parse_auth_params(value)[1]
    assert "qop" not in p and "cnonce" not in p and "nc" not in p
    assert p["response"] == md5(f"{md5('u:r:p')}:n:{md5('REGISTER:sip:r')}")
    for bad in ('Basic realm="r"', 'Digest realm="r", nonce="n", algorithm=SHA-512',
                'Digest realm="r", nonce="n", qop="auth-int"', 'Digest realm="r"', "Digest x"):
        with pytest.raises(UnsupportedChallenge):
            authorization_for(bad, method="REGISTER", uri="sip:r", username="u", password="p",
                              cnonce="c")


def test_pick_challenge_prefers_sha256() -> None:
    md5_c, sha_c = DigestServer("r", SECRET, algorithms=("MD5", "SHA-256")).challenge(1.0)
    assert pick_challenge([md5_c, sha_c]) == sha_c
    assert pick_challenge(["Basic realm=x", md5_c]) == md5_c
    assert pick_challenge(["Basic realm=x", 'Digest nonce="n", algorithm=SHA-512']) is None


CAPTURES = __import__("pathlib").Path(__file__).parent / "captures"


@pytest.mark.parametrize(("name", "method"), [
    ("pyvoip_register_auth.sip", "REGISTER"),  # RFC 2069, uri with ;transport=UDP
    ("sipp_invite_auth.sip", "INVITE"),  # qop=auth with cnonce and nc
])
def test_captured_peer_answers_hash_as_we_compute(name: str, method: str) -> None:
    from pbxcore.sip.message import Request, parse_message

    msg = parse_message((CAPTURES / name).read_bytes())
    assert isinstance(msg, Request)
    _, p = parse_auth_params(msg.headers.get("Authorization") or "")
    full = "cnonce" in p
    assert digest_response(
        p.get("algorithm", "MD5"), username=p["username"], realm=p["realm"], password="secret",
        method=method, uri=p["uri"], nonce=p["nonce"], qop="auth" if full else None,
        nc=p.get("nc", ""), cnonce=p.get("cnonce", ""),
    ) == p["response"]
    # Our server refuses it only for the nonce, which is not one of ours.
    srv = DigestServer("pbxcore", SECRET)
    assert srv.verify(msg.headers.get("Authorization"), method, msg.uri, USERS,
                      1.0).reason == "nonce not ours"
