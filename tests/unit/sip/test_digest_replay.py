"""Digest replay and destination binding (issue 9 item 5): one sniffed Authorization must not be
good twice, nor for another number; honest peers (pyVoIP, SIPp, baresip) still get in."""

from __future__ import annotations

import hashlib

import pytest

from pbxcore.sip.digest import DigestServer, authorization_for, parse_auth_params
from pbxcore.sip.nonces import NonceBook

USERS = {"1001": "secret"}
SECRET = b"k"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def qop_answer(srv: DigestServer, now: float, uri: str, *, method: str = "INVITE", nc: int = 1,
               challenge: str | None = None) -> str:
    return authorization_for(challenge or srv.challenge(now)[0], method=method, uri=uri,
                             username="1001", password="secret", cnonce="c0ffee", nc=nc)


def pyvoip_answer(srv: DigestServer, now: float, method: str = "INVITE") -> str:
    """pyVoIP 1.6.8: RFC 2069, digest uri `sip:<server>;transport=UDP` whatever it calls."""
    nonce = parse_auth_params(srv.challenge(now)[0])[1]["nonce"]
    uri = "sip:127.0.0.1;transport=UDP"
    response = md5(f"{md5('1001:pbx:secret')}:{nonce}:{md5(f'{method}:{uri}')}")
    return (f'Digest username="1001",realm="pbx",nonce="{nonce}",uri="{uri}",'
            f'response="{response}",algorithm=MD5')


def test_same_qop_answer_twice_is_a_replay_answered_stale() -> None:
    srv = DigestServer("pbx", SECRET)
    value = qop_answer(srv, 10.0, "sip:1002@127.0.0.1:5060")
    assert srv.verify(value, "INVITE", "sip:1002@127.0.0.1:5060", USERS, 11.0).ok
    again = srv.verify(value, "INVITE", "sip:1002@127.0.0.1:5060", USERS, 12.0)
    assert (again.ok, again.stale, again.reason, again.failure) == (
        False, True, "replayed nonce", False)


def test_nonce_count_must_grow_per_nonce() -> None:
    """RFC 7616 §3.4.5: baresip and SIPp reuse a nonce with nc 2, 3, ...; each nc once."""
    srv = DigestServer("pbx", SECRET)
    challenge = srv.challenge(0.0)[0]
    uri = "sip:127.0.0.1"

    def ok(nc: int) -> bool:
        value = qop_answer(srv, 0.0, uri, method="REGISTER", nc=nc, challenge=challenge)
        return srv.verify(value, "REGISTER", uri, USERS, 1.0).ok

    assert [ok(1), ok(2), ok(5), ok(5), ok(4), ok(6)] == [True, True, True, False, False, True]


def test_answer_without_qop_makes_the_nonce_single_use() -> None:
    srv = DigestServer("pbx", SECRET)
    value = pyvoip_answer(srv, 0.0)
    assert srv.verify(value, "INVITE", "sip:2000@127.0.0.1", USERS, 1.0).ok
    assert srv.verify(value, "INVITE", "sip:2000@127.0.0.1", USERS, 1.5).reason == "replayed nonce"
    # a fresh challenge per request, as pyVoIP does, works every time
    for t in (2.0, 3.0, 4.0):
        assert srv.verify(pyvoip_answer(srv, t), "INVITE", "sip:2000@127.0.0.1", USERS, t).ok


def test_credentials_for_one_number_do_not_call_another() -> None:
    """RFC 3261 §22.4: the digest uri is the Request-URI; the hash covers it."""
    srv = DigestServer("pbx", SECRET)
    value = qop_answer(srv, 0.0, "sip:1002@127.0.0.1:5060")
    moved = srv.verify(value, "INVITE", "sip:900@127.0.0.1:5060", USERS, 1.0)
    assert (moved.ok, moved.stale, moved.failure) == (False, False, True)
    assert moved.reason == "digest uri does not match the Request-URI"
    # the refusal did not consume the nonce: the honest request still goes through
    assert srv.verify(value, "INVITE", "sip:1002@127.0.0.1:5060", USERS, 1.0).ok


@pytest.mark.parametrize(("digest_uri", "request_uri", "same"), [
    ("sip:1002@127.0.0.1:5060", "sip:1002@127.0.0.1:5060", True),
    ("sip:1002@PBX.example;transport=tcp", "sip:1002@pbx.example:5060", True),  # host case, port, params
    ("sip:%31002@127.0.0.1", "sip:1002@127.0.0.1", True),  # escapes compared unescaped
    ("sip:127.0.0.1;transport=UDP", "sip:2000@127.0.0.1", True),  # pyVoIP: host only
    ("sip:1002@127.0.0.1", "sip:1003@127.0.0.1", False),
    ("sip:1002@10.0.0.1", "sip:1002@127.0.0.1", False),
    ("tel:1002", "sip:1002@127.0.0.1", False),
    ("garbage", "sip:1002@127.0.0.1", False),
])
def test_digest_uri_binding(digest_uri: str, request_uri: str, same: bool) -> None:
    srv = DigestServer("pbx", SECRET)
    value = qop_answer(srv, 0.0, digest_uri)
    assert srv.verify(value, "INVITE", request_uri, USERS, 1.0).ok is same


def test_replay_after_the_ttl_is_stale_by_age() -> None:
    srv = DigestServer("pbx", SECRET, nonce_ttl=300.0)
    value = qop_answer(srv, 0.0, "sip:1002@h")
    assert srv.verify(value, "INVITE", "sip:1002@h", USERS, 1.0).ok
    assert srv.verify(value, "INVITE", "sip:1002@h", USERS, 301.0).reason == "stale nonce"


def test_nonce_book_is_bounded_and_eviction_never_reopens_a_nonce() -> None:
    book = NonceBook(ttl=300.0, max_entries=3)
    for i in range(10):
        assert book.accept(f"n{i}", issued=float(i), nc=None, now=10.0)
    assert len(book) == 3
    for i in range(10):  # evicted or not, a used nonce stays used
        assert not book.accept(f"n{i}", issued=float(i), nc=None, now=10.0)
    # an unseen nonce issued before the newest evicted one: refused (its client gets stale)
    assert not book.accept("older", issued=5.0, nc=1, now=10.0)
    assert book.accept("newer", issued=9.5, nc=1, now=10.0)


def test_nonce_book_forgets_expired_nonces() -> None:
    book = NonceBook(ttl=300.0)
    for i in range(1000):
        book.accept(f"n{i}", issued=float(i), nc=1, now=float(i))
    book.accept("late", issued=2000.0, nc=1, now=2000.0)
    assert len(book) == 1


def test_a_flood_of_failures_stores_nothing() -> None:
    """Only accepted answers create entries: guesses and forged nonces cost no memory."""
    srv = DigestServer("pbx", SECRET)
    for i in range(2000):
        value = authorization_for(srv.challenge(float(i))[0], method="REGISTER", uri="sip:h",
                                  username="1001", password=f"guess{i}", cnonce="c")
        assert not srv.verify(value, "REGISTER", "sip:h", USERS, float(i)).ok
    assert len(srv.used) == 0
