"""pbxcore.sip.address: name-addr, Contact lists, Via (RFC 3261 §20.10, §20.42; RFC 4475)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcore.sip.address import (
    NameAddr,
    Via,
    parse_contact_list,
    parse_name_addr,
    parse_via,
    quote,
    request_vias,
)
from pbxcore.sip.message import Headers, SipSyntaxError


def test_quoted_display_with_quoted_pairs() -> None:
    a = parse_name_addr(r'"J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8')
    assert a.display == 'J Rosenberg \\"'
    assert a.uri == "sip:jdrosen@example.com"
    assert a.tag == "98asjd8"


def test_to_with_tag_and_more_params() -> None:
    a = parse_name_addr("<sip:bob@example.com>;tag=2;foo=bar")
    assert a.tag == "2"
    assert a.param("FOO") == "bar"
    assert a.display is None


def test_bare_addr_spec_params_belong_to_header() -> None:
    # RFC 4475 §3.3.12 cparam01 versus §3.3.13 cparam02
    bare = parse_name_addr("sip:+19725552222@gw1.example.net;unknownparam")
    assert bare.uri == "sip:+19725552222@gw1.example.net"
    assert bare.params == (("unknownparam", None),)
    angled = parse_name_addr("<sip:+19725552222@gw1.example.net;unknownparam>")
    assert angled.uri == "sip:+19725552222@gw1.example.net;unknownparam"
    assert angled.params == ()


def test_no_lws_before_angle() -> None:
    # RFC 4475 §3.1.1.6 lwsdisp
    a = parse_name_addr("caller<sip:caller@example.com>;tag=323")
    assert (a.display, a.uri, a.tag) == ("caller", "sip:caller@example.com", "323")


def test_multi_token_display_name() -> None:
    a = parse_name_addr("token1~` token2'+_  token3*%!.- <sip:mundane@example.com>;tag=x")
    assert a.display == "token1~` token2'+_ token3*%!.-"


def test_quoted_param_value_kept_raw() -> None:
    a = parse_name_addr('<sip:a@b>;p="x ;y";tag=1')
    assert a.param("p") == '"x ;y"'
    assert a.tag == "1"


def test_spaces_inside_angle_brackets_tolerated() -> None:
    # RFC 4475 §3.1.2.14 badaspec: pbxcore chooses the liberal reading
    a = parse_name_addr('"Watson, Thomas" < sip:t.watson@example.org >')
    assert a.uri == "sip:t.watson@example.org"
    assert a.display == "Watson, Thomas"


def test_unquoted_comma_display_tolerated() -> None:
    # RFC 4475 §3.1.2.15 baddn: pbxcore infers the quotes
    assert parse_name_addr("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").display == (
        "Bell, Alexander"
    )


def test_other_schemes_are_opaque() -> None:
    # RFC 4475 §3.3.4 unksm2
    assert parse_name_addr("isbn:2983792873").uri == "isbn:2983792873"
    assert parse_name_addr("<http://www.example.com>;tag=3").uri == "http://www.example.com"


def test_tel_uri_in_from() -> None:
    a = parse_name_addr('"Bob" <tel:+15551234567>;tag=abc')
    assert a.sip_uri.user == "+15551234567"


@pytest.mark.parametrize(
    "value",
    [
        '"Mr. J. User <sip:j.user@example.com>',  # quotbal
        '"Joe" <sip:joe@example.org>;;;;',  # badinv01's Contact
        "<sip:joe@example.org",
        '"Joe" sip:joe@example.org',
        "Joe sip:joe@example.org",
        "",
        "<sip:joe@example.org>;tag=",
        "<sip:joe@example.org> junk",
        "<sip:joe@exa mple.org>",
        "<sip:@example.org>",
        "<not a uri>",
        'a"b <sip:x@y>',
    ],
)
def test_malformed_addresses(value: str) -> None:
    with pytest.raises(SipSyntaxError) as err:
        parse_name_addr(value)
    assert err.value.status == 400


def test_serialize_quotes_display_name() -> None:
    a = NameAddr('Say "hi" \\ \x07', "sip:a@b", (("tag", "1"),))
    assert str(a) == '"Say \\"hi\\" \\\\ \\\x07" <sip:a@b>;tag=1'
    assert parse_name_addr(str(a)) == a
    assert quote("a\r\nb") == '"a  b"'


def test_with_tag() -> None:
    a = parse_name_addr("<sip:a@b>;foo=1")
    assert str(a.with_tag("xyz")) == "<sip:a@b>;foo=1;tag=xyz"
    assert a.with_tag("1").with_tag("2").tag == "2"


def test_contact_list() -> None:
    contacts = parse_contact_list('"A, B" <sip:a@h1>;q=0.5, sip:b@h2;expires=60 ,<sip:c@h3>')
    assert contacts != "*"
    assert [c.uri for c in contacts] == ["sip:a@h1", "sip:b@h2", "sip:c@h3"]
    assert contacts[1].param("expires") == "60"
    assert parse_contact_list(" * ") == "*"
    with pytest.raises(SipSyntaxError):
        parse_contact_list("<sip:a@h1>,,<sip:b@h2>")


def test_via_basic() -> None:
    v = parse_via("SIP/2.0/udp 192.0.2.1:5062;branch=z9hG4bK776;rport;received=10.0.0.1")
    assert v == Via(
        "UDP", "192.0.2.1", 5062, (("branch", "z9hG4bK776"), ("rport", None), ("received", "10.0.0.1"))
    )
    assert v.branch == "z9hG4bK776"
    assert v.rport == ""
    assert v.received == "10.0.0.1"
    assert v.sent_by == "192.0.2.1:5062"


def test_via_with_lws_everywhere() -> None:
    # RFC 4475 §3.1.1.1 wsinv, after unfolding
    v = parse_via("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
    assert (v.transport, v.host, v.port, v.branch) == (
        "TCP", "spindle.example.com", None, "z9hG4bK9ikj8"
    )
    assert parse_via("SIP/2.0/UDP host.example.com : 5070;branch=z9").port == 5070


def test_via_rport_absent_and_set() -> None:
    v = parse_via("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKx;rport")
    assert v.host == "2001:db8::1"
    assert v.sent_by == "[2001:db8::1]"
    w = v.with_params(received="2001:db8::2", rport="5099")
    assert str(w) == "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKx;rport=5099;received=2001:db8::2"
    assert parse_via(str(w)) == w
    assert parse_via("SIP/2.0/TCP h").rport is None


def test_unknown_transport_is_legal() -> None:
    assert parse_via("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en").transport == (
        "UNKNOWN"
    )


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP 192.0.2.15;;",  # badinv01
        "SIP/2.0/UDP",
        "SIP/2.0 192.0.2.15",
        "SIP/2.0/UDP host name",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP ;branch=x",
    ],
)
def test_malformed_via(value: str) -> None:
    with pytest.raises(SipSyntaxError):
        parse_via(value)


def test_request_vias_split_across_lines() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b;branch=2"), ("v", "SIP/2.0/TLS c")])
    assert [v.host for v in request_vias(h)] == ["a", "b", "c"]
    with pytest.raises(SipSyntaxError):
        request_vias(Headers([("Via", "SIP/2.0/UDP 192.0.2.15;;,;,,")]))
    with pytest.raises(SipSyntaxError):
        request_vias(Headers([("Via", "SIP/2.0/UDP a,")]))


_alphabet = "sip:@;=?&[]%.-_0123456789abSIP/UD \t\"<>,\\\x00\u00e9"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_alphabet, max_size=50))
def test_property_name_addr_only_syntax_errors(text: str) -> None:
    try:
        addr = parse_name_addr(text)
    except SipSyntaxError:
        return
    assert parse_name_addr(str(addr)) == addr


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_alphabet, max_size=50))
def test_property_via_only_syntax_errors(text: str) -> None:
    try:
        via = parse_via("SIP/2.0/UDP " + text)
    except SipSyntaxError:
        return
    assert parse_via(str(via)) == via
