"""pbxcore.sip.uri: parse, unescape once, serialize back (RFC 3261 §19.1, RFC 4475)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcore.sip.message import SipSyntaxError
from pbxcore.sip.uri import SipUri, is_sip_scheme, parse_uri, unescape


def test_full_sip_uri() -> None:
    u = parse_uri("sip:alice:pw@atlanta.example.com:5062;transport=tcp;lr?subject=hi&x=1")
    assert u == SipUri(
        "sip", "alice", "pw", "atlanta.example.com", 5062,
        (("transport", "tcp"), ("lr", None)), (("subject", "hi"), ("x", "1")),
    )
    assert u.param("TRANSPORT") == "tcp"
    assert u.param("lr") == ""
    assert u.param("maddr") is None
    assert u.hostport == "atlanta.example.com:5062"


@pytest.mark.parametrize(
    "text",
    [
        "sip:example.com",
        "sips:bob@192.0.2.4",
        "sip:bob@[2001:db8::10]:5070;transport=udp",
        "sip:[::1]",
        "sip:+19725552222@gw1.example.net;unknownparam",
        "sip:user@example.com?Route=%3Csip:example.com%3E",
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31",
        "tel:+1-201-555-0123;phone-context=example.com",
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com",
    ],
)
def test_round_trip(text: str) -> None:
    assert str(parse_uri(text)) == text


def test_ipv6_host_without_brackets() -> None:
    u = parse_uri("sip:bob@[2001:db8::10]:5070")
    assert (u.host, u.port) == ("2001:db8::10", 5070)


def test_scheme_case_folded() -> None:
    assert parse_uri("SIP:Bob@Example.COM").scheme == "sip"
    assert str(parse_uri("SIP:Bob@Example.COM")) == "sip:Bob@Example.COM"


def test_user_unescaped_exactly_once() -> None:
    # RFC 4475 §3.1.1.3 esc01
    assert parse_uri("sip:sips%3Auser%40example.com@example.net").user_unescaped == (
        "sips:user@example.com"
    )
    assert parse_uri("sip:%75se%72@example.com").user_unescaped == "user"
    assert parse_uri("sip:I%20have%20spaces@example.net").user_unescaped == "I have spaces"
    assert unescape("v%61lue%25%34%31") == "value%41"


def test_escaped_nul_kept() -> None:
    # RFC 4475 §3.1.1.4 escnull: not truncated at the NUL, distinct users stay distinct
    assert parse_uri("sip:null-%00-null@example.com").user_unescaped == "null-\x00-null"
    assert parse_uri("sip:%00@h").user_unescaped != parse_uri("sip:%00%00@h").user_unescaped


def test_semicolon_in_user_part() -> None:
    # RFC 4475 §3.1.1.9 semiuri
    u = parse_uri("sip:user;par=u%40example.net@example.com")
    assert u.user == "user;par=u%40example.net"
    assert u.user_unescaped == "user;par=u@example.net"
    assert u.host == "example.com"
    assert u.params == ()


def test_invalid_escape_left_alone() -> None:
    assert unescape("%Z%45") == "%ZE"
    assert unescape("100%") == "100%"


def test_non_utf8_octets_survive() -> None:
    assert unescape("%FF%FE").encode("utf-8", "surrogateescape") == b"\xff\xfe"


def test_tel_uri() -> None:
    u = parse_uri("tel:+15551234567;phone-context=+1")
    assert (u.scheme, u.user, u.host, u.port) == ("tel", "+15551234567", "", None)
    assert u.param("phone-context") == "+1"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("sip:", 400),
        ("sip:@example.com", 400),
        ("sip:user@", 400),
        ("sip:user@exa mple.com", 400),
        ("sip:user@example.com:99999", 400),
        ("sip:user@example.com:5o60", 400),
        ("sip:user@[::1", 400),
        ("sip:user@[zz]", 400),
        ("sip:user@example.com;;lr", 400),
        ("sip:user@example.com; lr", 400),
        ("<sip:user@example.com>", 400),
        ("user@example.com", 400),
        ("tel:", 400),
        ("nobodyKnowsThisScheme:totallyopaquecontent", 416),
        ("http://www.example.com", 416),
    ],
)
def test_malformed(text: str, status: int) -> None:
    with pytest.raises(SipSyntaxError) as err:
        parse_uri(text)
    assert err.value.status == status


def test_is_sip_scheme() -> None:
    assert is_sip_scheme("sip:a@b")
    assert is_sip_scheme("SIPS:a@b")
    assert not is_sip_scheme("tel:+1")
    assert not is_sip_scheme("sipx:a")
    assert not is_sip_scheme("a@b")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="sip:@;=?&[]%.-_:0123456789abcAB \"<>,\x00\u00e9", max_size=40))
def test_property_only_syntax_errors(text: str) -> None:
    try:
        uri = parse_uri(text)
    except SipSyntaxError:
        return
    assert parse_uri(str(uri)) == uri
