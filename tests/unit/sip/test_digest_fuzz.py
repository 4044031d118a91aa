"""`DigestServer.verify` is total (issue 9 item 1): any text in any Authorization field — non-ASCII,
controls, lone surrogates such as the `\\udcff` a `\\xff` octet decodes to — gives a result, never
an exception.  `nonce="a.b.\\xff"` used to raise UnicodeEncodeError in the HMAC check, which left
the request unanswered."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcore.sip.digest import AuthResult, DigestServer, authorization_for, parse_auth_params
from pbxcore.sip.message import Request, parse_message

FIELDS = ("username", "realm", "nonce", "uri", "response", "cnonce", "nc", "qop", "algorithm",
          "opaque")
USERS = {"1001": "secret"}
SRV = DigestServer("pbx", b"k", algorithms=("MD5", "SHA-256"))

# Every code point, surrogates included (category Cs is excluded by default).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), ANY_TEXT), st.booleans(), ANY_TEXT)
def test_verify_never_raises_on_any_field(fields: dict[str, str], quote: bool,
                                          request_uri: str) -> None:
    header = "Digest " + ", ".join(f"{k}={_quoted(v) if quote else v}" for k, v in fields.items())
    result = SRV.verify(header, "REGISTER", request_uri, USERS, 1.0)
    assert isinstance(result, AuthResult) and not result.ok


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_verify_never_raises_on_any_header(value: str) -> None:
    assert not SRV.verify(value, "INVITE", "sip:1002@h", USERS, 1.0).ok


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FIELDS), ANY_TEXT)
def test_one_field_replaced_in_a_valid_answer(field: str, text: str) -> None:
    """Start from a right answer, replace one field with anything: a result, and ok only when
    the text happens to be the original value (or a field the hash does not cover)."""
    srv = DigestServer("pbx", b"k")
    value = authorization_for(srv.challenge(0.0)[0], method="REGISTER", uri="sip:h",
                              username="1001", password="secret", cnonce="c")
    _, params = parse_auth_params(value)
    params[field] = text
    header = "Digest " + ", ".join(f"{k}={_quoted(v)}" for k, v in params.items())
    srv.verify(header, "REGISTER", "sip:h", USERS, 1.0)


def test_non_utf8_nonce_from_the_wire_is_a_failed_authentication() -> None:
    """The reported input: `nonce="a.b.\\xff"` as octets, through the real parser."""
    raw = (b'REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKx\r\n'
           b'From: <sip:1001@127.0.0.1>;tag=1\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c\r\n'
           b'CSeq: 2 REGISTER\r\nAuthorization: Digest username="1001", realm="pbx", '
           b'nonce="a.b.\xff", uri="sip:127.0.0.1", response="' +
           hashlib.md5(b"x").hexdigest().encode() + b'\xfe"\r\nContent-Length: 0\r\n\r\n')
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    result = SRV.verify(msg.headers.get("Authorization"), "REGISTER", msg.uri, USERS, 1.0)
    assert (result.ok, result.failure, result.user) == (False, True, "1001")
