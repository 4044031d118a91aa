"""pbxcore.sip.message: parse, serialize, and every case pyVoIP's parser fails (docs/peers.md §1a)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcore.sip.address import parse_name_addr, request_vias
from pbxcore.sip.message import (
    Headers,
    Request,
    Response,
    SipSyntaxError,
    canonical_name,
    parse_cseq,
    parse_message,
    split_list,
)

BASE = (
    "{method} sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
    "From: <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: c1@192.0.2.1\r\n"
    "CSeq: 1 {method}\r\n"
    "Max-Forwards: 70\r\n"
)


def req(extra: str = "", body: str = "", method: str = "INVITE") -> bytes:
    head = BASE.format(method=method) + extra
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()


def parse_request(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


@pytest.mark.parametrize(
    "method", ["INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO", "SUBSCRIBE",
               "NOTIFY", "REFER", "MESSAGE", "UPDATE", "PRACK", "PUBLISH"]
)
def test_every_method(method: str) -> None:
    assert parse_request(req(method=method)).method == method


def test_compact_and_lower_case_names() -> None:
    data = (
        b"INVITE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"f: <sip:a@h>;tag=1\r\nt: <sip:b@h>\r\ni: abc\r\ncseq: 1 INVITE\r\n"
        b"m: <sip:a@h>\r\nc: application/sdp\r\nk: timer\r\nl: 3\r\n\r\nabc"
    )
    r = parse_request(data)
    assert [n for n, _ in r.headers] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "Supported",
        "Content-Length",
    ]
    assert r.headers.get("content-type") == "application/sdp"
    assert r.headers.get("C") == "application/sdp"
    assert r.body == b"abc"


def test_canonical_name() -> None:
    assert canonical_name("v") == "Via"
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("WWW-AUTHENTICATE") == "WWW-Authenticate"
    assert canonical_name("x-foo-BAR") == "X-Foo-Bar"


def test_via_comma_list_on_one_line() -> None:
    r = parse_request(req().replace(
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
        b"Via: SIP/2.0/UDP p1;branch=z9hG4bKa, SIP/2.0/TCP p2:5070;branch=z9hG4bKb",
    ))
    vias = request_vias(r.headers)
    assert [(v.host, v.port, v.branch) for v in vias] == [
        ("p1", None, "z9hG4bKa"), ("p2", 5070, "z9hG4bKb"),
    ]


def test_no_space_after_colon_and_space_before() -> None:
    r = parse_request(req().replace(b"Call-ID: ", b"Call-ID:").replace(b"CSeq: ", b"CSeq   :"))
    assert r.call_id == "c1@192.0.2.1"
    assert r.cseq == (1, "INVITE")


def test_folded_lines() -> None:
    r = parse_request(req("Subject: first\r\n  second\r\n\tthird\r\n"))
    assert r.headers.get("Subject") == "first second third"


def test_subject_with_colons() -> None:
    assert parse_request(req("Subject: re: hello: x\r\n")).headers.get("Subject") == "re: hello: x"


def test_tel_uri_in_from() -> None:
    r = parse_request(req().replace(b"<sip:alice@example.com>", b"<tel:+15551234567>"))
    assert parse_name_addr(r.headers.get("From") or "").sip_uri.user == "+15551234567"


def test_sdp_body_ending_in_crlfcrlf() -> None:
    body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n\r\n"
    assert parse_request(req(body=body)).body == body.encode()


def test_lf_only_line_ends() -> None:
    data = req(body="v=0\n").replace(b"\r\n", b"\n")
    r = parse_request(data)
    assert r.cseq == (1, "INVITE")
    assert r.body == b"v=0\n"


def test_mixed_line_ends() -> None:
    data = req().replace(b"\r\n\r\n", b"\n\r\n")
    assert parse_request(data).body == b""


def test_unknown_status_code() -> None:
    resp = parse_message(b"SIP/2.0 299 Whatever\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (299, "Whatever")


def test_reason_with_spaces_and_empty_reason() -> None:
    resp = parse_message(b"SIP/2.0 486 Busy  Here \r\n\r\n")
    assert isinstance(resp, Response) and resp.reason == "Busy  Here "
    resp = parse_message(b"SIP/2.0 100 \r\n\r\n")
    assert isinstance(resp, Response) and resp.reason == ""


def test_keepalive_is_not_a_message() -> None:
    with pytest.raises(SipSyntaxError):
        parse_message(b"\r\n\r\n")


def test_leading_crlf_ignored() -> None:
    assert parse_request(b"\r\n\r\n" + req()).method == "INVITE"


def test_non_utf8_bytes_round_trip() -> None:
    data = req("X-Name: caf\xe9\r\n".replace("\xe9", "")).replace(b"X-Name: caf", b"X-Name: caf\xe9")
    r = parse_request(data)
    assert r.to_bytes() == data
    assert r.body == b""


def test_binary_body_kept() -> None:
    body = bytes(range(256))
    data = req().replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 256\r\n\r\n") + body
    assert parse_request(data).body == body


def test_repeated_record_route_kept_in_order() -> None:
    r = parse_request(req("Record-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>, <sip:p3;lr>\r\n"))
    assert r.headers.values("Record-Route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert r.headers.get_all("Record-Route") == ["<sip:p1;lr>", "<sip:p2;lr>, <sip:p3;lr>"]


def test_to_tag_with_more_params() -> None:
    r = parse_request(req().replace(b"To: <sip:bob@example.com>", b"To: <sip:bob@example.com>;tag=2;foo=bar"))
    to = parse_name_addr(r.headers.get("To") or "")
    assert (to.tag, to.param("foo")) == ("2", "bar")


def test_supported_without_space() -> None:
    assert parse_request(req("Supported: timer,replaces\r\n")).headers.values("Supported") == [
        "timer", "replaces",
    ]


def test_split_list_respects_quotes_and_angles() -> None:
    assert split_list('"a, b" <sip:x@y;p=1,2>, <sip:z@w>') == ['"a, b" <sip:x@y;p=1,2>', "<sip:z@w>"]
    assert split_list(r'"a\", b" <sip:x>, c') == [r'"a\", b" <sip:x>', "c"]


def test_parse_cseq() -> None:
    assert parse_cseq("0009 INVITE") == (9, "INVITE")
    for bad in ("1", "x INVITE", "1 INVITE extra", "4294967296 INVITE", "\u00b2 INVITE", "-1 BYE"):
        with pytest.raises(SipSyntaxError):
            parse_cseq(bad)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"INVITE sip:bob@example.com SIP/2.0\r\nVia: x", 400),  # no empty line
        (req().replace(b"Max-Forwards: 70", b"Max-Forwards: \xc2\xb2"), 400),  # '²' isdigit
        (req().replace(b"Content-Length: 0", b"Content-Length: \xd9\xa3"), 400),  # Arabic 3
        (req().replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), 400),
        (req().replace(b"Call-ID: c1", b"Call-ID: c\r1"), 400),  # bare CR
        (req().replace(b"SIP/2.0\r\nVia", b"SIP/2.0\r\n Via"), 400),  # fold into start line
        (req().replace(b"Max-Forwards: 70", b"Max Forwards: 70"), 400),
        (req().replace(b"Max-Forwards: 70", b"Max-Forwards 70"), 400),
        (req().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (req().replace(b"sip:bob@example.com SIP", b"sip:bob@exa\x01mple.com SIP"), 400),
        (req().replace(b"sip:bob@example.com SIP", b"sip:bob@ SIP"), 400),
        (req().replace(b"Via: SIP/2.0/UDP 192.0.2.1:5060", b"Via: SIP/2.0/UDP 192.0.2.1:5060,"), 400),
        (req().replace(b"From: <sip:alice@example.com>", b'From: "alice <sip:alice@example.com>'), 400),
        (req().replace(b"To: <sip:bob@example.com>", b"To: <sip:bob@example.com"), 400),
        (req().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), 400),
        (req().replace(b"Content-Length: 0", b"Content-Length: 10"), 400),
        (b"SIP/2.0 1000 Big\r\n\r\n", 400),
        (b"SIP/2.0 099 Small\r\n\r\n", 400),
        (b"SIP/2.0 200 OK\r\nCSeq: 99999999999 INVITE\r\n\r\n", 400),
    ],
)
def test_rejects(data: bytes, status: int) -> None:
    with pytest.raises(SipSyntaxError) as err:
        parse_message(data)
    assert err.value.status == status


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(name: str) -> None:
    data = b"\r\n".join(
        line for line in req().split(b"\r\n") if not line.startswith(name.encode() + b":")
    )
    with pytest.raises(SipSyntaxError, match=name):
        parse_message(data)


def test_udp_body_is_rest_without_content_length_and_cut_with_it() -> None:
    no_cl = req(body="").replace(b"Content-Length: 0\r\n", b"") + b"v=0\r\n"
    assert parse_request(no_cl).body == b"v=0\r\n"
    assert parse_message(no_cl, stream=True).body == b""
    assert parse_request(req(body="abc") + b"junk").body == b"abc"


def test_serializer_keeps_content_length_position_and_fixes_it() -> None:
    r = parse_request(req(body="abc"))
    r.body = b"hello"
    out = r.to_bytes()
    assert out.endswith(b"Content-Length: 5\r\n\r\nhello")
    r.headers.add("Content-Length", "99")
    assert r.to_bytes().count(b"Content-Length") == 1
    fresh = Request("OPTIONS", "sip:x@y", Headers([("Call-ID", "1")]))
    assert fresh.to_bytes() == b"OPTIONS sip:x@y SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n"


def test_serializer_refuses_header_injection() -> None:
    r = Request("OPTIONS", "sip:x@y", Headers([("Subject", "hi\r\nVia: evil")]))
    with pytest.raises(ValueError) as err:
        r.to_bytes()
    assert not isinstance(err.value, SipSyntaxError)  # our bug, not the peer's


def test_request_properties() -> None:
    r = parse_request(req().replace(b"Max-Forwards: 70", b"Max-Forwards: 0068"))
    assert r.max_forwards == 68
    assert r.uri_scheme == "sip"
    assert r.call_id == "c1@192.0.2.1"


def test_headers_multimap() -> None:
    h = Headers([("v", "a"), ("To", "t"), ("Via", "b")])
    h.set("VIA", "c")
    assert list(h) == [("Via", "c"), ("To", "t")]
    h.prepend("Via", "z")
    h.add("x-y", "1")
    assert h.get_all("via") == ["z", "c"] and h.get("X-Y") == "1" and "x-y" in h
    h.remove("via")
    assert "Via" not in h and len(h) == 2


# -- property: random headers and bodies survive serialize -> parse -----------------------------

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
                 min_size=1, max_size=20)
_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=60,
).map(lambda s: s.strip(" \t"))
_reserved = {"via", "from", "to", "call-id", "cseq", "content-length", "max-forwards",
             "content-type", "expires", "v", "f", "t", "i", "l", "c"}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(_token.filter(lambda n: n.lower() not in _reserved), _value), max_size=12
    ),
    st.binary(max_size=300),
)
def test_property_round_trip(extra: list[tuple[str, str]], body: bytes) -> None:
    headers = Headers([
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("From", "<sip:a@h>;tag=1"),
        ("To", "<sip:b@h>"), ("Call-ID", "x"), ("CSeq", "1 MESSAGE"), *extra,
    ])
    original = Request("MESSAGE", "sip:b@h", headers, body)
    wire = original.to_bytes()
    for stream in (False, True):
        parsed = parse_request(wire) if not stream else parse_message(wire, stream=True)
        assert isinstance(parsed, Request)
        assert parsed.body == body
        assert [(n, v) for n, v in parsed.headers if n != "Content-Length"] == list(headers)
        assert parsed.to_bytes() == wire


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_property_garbage_never_crashes(data: bytes) -> None:
    try:
        parse_message(data)
    except SipSyntaxError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 400), st.binary(min_size=1, max_size=4))
def test_property_mutated_request_never_crashes(pos: int, junk: bytes) -> None:
    data = req("Supported: timer\r\n", body="v=0\r\n")
    mutated = data[:pos] + junk + data[pos + len(junk):]
    try:
        msg = parse_message(mutated)
    except SipSyntaxError:
        return
    parse_message(msg.to_bytes())


# -- captured peer messages (captures/README.md) --------------------------------------------------

CAPTURES = Path(__file__).parent / "captures"
BYTE_EXACT = ["pyvoip_register.sip", "pyvoip_register_auth.sip", "pyvoip_invite.sip",
              "pyvoip_ack.sip"]


@pytest.mark.parametrize("name", BYTE_EXACT)
def test_capture_round_trips_byte_exactly(name: str) -> None:
    data = (CAPTURES / name).read_bytes()
    assert parse_message(data).to_bytes() == data
    assert parse_message(data, stream=True).to_bytes() == data


def test_sipp_capture_round_trips_structurally() -> None:
    data = (CAPTURES / "sipp_invite_auth.sip").read_bytes()
    first = parse_request(data)
    wire = first.to_bytes()
    assert wire != data  # sipp pads Content-Length; we write it plainly
    assert wire == data.replace(b"Content-Length:   166", b"Content-Length: 166")
    second = parse_request(wire)
    assert list(second.headers) == list(first.headers) and second.body == first.body
    assert second.headers.get("Content-Length") == "166" == str(len(first.body))
    auth = first.headers.get("Authorization") or ""
    assert auth.startswith("Digest ") and "qop=auth" in auth and "nc=00000001" in auth
    assert parse_name_addr(first.headers.get("Contact") or "").uri == "sip:1001@127.0.0.1:5091"


def test_pyvoip_quirks_visible() -> None:
    reg = parse_request((CAPTURES / "pyvoip_register.sip").read_bytes())
    contact = parse_name_addr(reg.headers.get("Contact") or "")
    assert contact.sip_uri.param("transport") == "UDP"
    assert contact.param("+sip.instance") == '"<urn:uuid:6F6A1C8E-3C0B-4C57-9B8A-2D4C0E3F4A11>"'
    assert request_vias(reg.headers)[0].rport == ""
    assert reg.headers.values("Allow") == ["INVITE", "ACK", "BYE", "CANCEL"]
    invite = parse_request((CAPTURES / "pyvoip_invite.sip").read_bytes())
    ack = parse_request((CAPTURES / "pyvoip_ack.sip").read_bytes())
    assert request_vias(ack.headers)[0].branch == request_vias(invite.headers)[0].branch
    assert ack.uri == parse_name_addr(invite.headers.get("To") or "").uri
    assert ack.cseq == (invite.cseq[0], "ACK")
    assert invite.body.endswith(b"a=sendrecv\r\n") and b"telephone-event/8000" in invite.body
