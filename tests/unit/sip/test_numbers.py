"""Every numeric field a peer sends is ASCII digits, bounded before conversion (issue 9 items 1, 2).

`int()` raises a plain ValueError for '²' (which `isdigit()` accepts) and for 4,301+ digits, and
silently accepts '+5', '1_000' and '٣'.  The parser must turn all of them into `SipSyntaxError`
(a 400) or `SdpError` (a 488), never let the ValueError through.
"""

from __future__ import annotations

import pytest

from pbxcore.call.registrar import _expires
from pbxcore.sip.message import SipSyntaxError, parse_cseq, parse_message
from pbxcore.sip.numbers import UINT32_MAX, ascii_uint, clamped_uint
from pbxcore.sip.registration import _granted, _retry_after
from pbxcore.sip.sdp import SdpError, negotiate, parse_sdp
from pbxcore.sip.uri import parse_host, parse_uri

HUGE = "9" * 5000  # past CPython's 4,300-digit int() limit
ZEROS = "0" * 5000 + "7"  # a small value spelled with more digits than int() takes
NOT_ASCII = ["\u00b2", "\u0663", "\uff15", "+5", "-5", " 5", "5 ", "1_0", "0x5", "", "5\n"]


def test_ascii_uint() -> None:
    assert ascii_uint("0", 10) == 0
    assert ascii_uint("0009", 10) == 9
    assert ascii_uint(ZEROS, 10) == 7
    assert ascii_uint("65535", 65535) == 65535
    assert ascii_uint("65536", 65535) is None
    assert ascii_uint(HUGE, UINT32_MAX) is None
    for bad in NOT_ASCII:
        assert ascii_uint(bad, 10**9) is None, bad


def test_clamped_uint() -> None:
    assert clamped_uint("42", 100) == 42
    assert clamped_uint("101", 100) == 100
    assert clamped_uint(HUGE, 100) == 100
    assert clamped_uint(ZEROS, 100) == 7
    for bad in NOT_ASCII:
        assert clamped_uint(bad, 10**9) is None, bad


def request(cseq: str = "1", max_forwards: str = "70", length: str | None = None,
            via_port: str = "5060", uri_port: str = "5060", body: str = "") -> bytes:
    return (
        f"OPTIONS sip:bob@example.com:{uri_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:{via_port};branch=z9hG4bK1\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: c1\r\nCSeq: {cseq} OPTIONS\r\nMax-Forwards: {max_forwards}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n{body}"
    ).encode()


@pytest.mark.parametrize("field", ["cseq", "max_forwards", "length", "via_port", "uri_port"])
@pytest.mark.parametrize("value", [HUGE, *NOT_ASCII[:4]])
def test_every_numeric_request_field_is_a_syntax_error(field: str, value: str) -> None:
    with pytest.raises(SipSyntaxError) as err:
        parse_message(request(**{field: value}))
    assert err.value.status == 400


def test_bounds_of_rfc_3261() -> None:
    parse_message(request(cseq=str(2**31 - 1), max_forwards="255"))
    parse_message(request(cseq=ZEROS, max_forwards="0" * 5000 + "70", length="0" * 5000))
    for field, value in [("cseq", str(2**31)), ("max_forwards", "256"),
                         ("via_port", "65536"), ("uri_port", "65536")]:
        with pytest.raises(SipSyntaxError):
            parse_message(request(**{field: value}))
    msg = parse_message(request(max_forwards="0068"))
    assert msg.max_forwards == 68  # type: ignore[union-attr]


def test_response_cseq_and_content_length() -> None:
    for head in (f"CSeq: {HUGE} INVITE", f"Content-Length: {HUGE}", "CSeq: \u00b2 INVITE"):
        with pytest.raises(SipSyntaxError):
            parse_message(f"SIP/2.0 200 OK\r\n{head}\r\n\r\n".encode())


def test_parse_cseq_bound() -> None:
    assert parse_cseq(f"{2**31 - 1} ACK") == (2**31 - 1, "ACK")
    with pytest.raises(SipSyntaxError):
        parse_cseq(f"{2**31} ACK")  # RFC 3261 §8.1.1.5: less than 2**31


def test_uri_and_host_ports() -> None:
    assert parse_host("h:00005060") == ("h", 5060)
    for bad in (HUGE, "\u00b2", "\u0663", "+1", "5060\n"):
        with pytest.raises(SipSyntaxError):
            parse_host(f"h:{bad}")
        with pytest.raises(SipSyntaxError):
            parse_uri(f"sip:a@[::1]:{bad}")


SDP = ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP {fmts}\r\na=rtpmap:{pt} telephone-event/{rate}\r\n"
       "a=fmtp:{fmtp} 0-15\r\n")


def sdp(port: str = "4000", fmts: str = "0 101", pt: str = "101", rate: str = "8000",
        fmtp: str = "101") -> bytes:
    return SDP.format(port=port, fmts=fmts, pt=pt, rate=rate, fmtp=fmtp).encode()


def test_sdp_good() -> None:
    answer = negotiate(parse_sdp(sdp()))
    assert answer is not None and answer.dtmf_payload_type == 101


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", HUGE, "+4000", "4_000", "70000"])
def test_sdp_media_port_is_an_sdp_error(value: str) -> None:
    with pytest.raises(SdpError):
        parse_sdp(sdp(port=value))
    with pytest.raises(SdpError):
        parse_sdp(sdp(port=f"4000/{value}"))


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", HUGE, "+101", "1_01", "128"])
def test_sdp_payload_numbers_are_only_ascii(value: str) -> None:
    # The reproducer: '²' in the m= format list or a=fmtp raised ValueError.
    only_bad = negotiate(parse_sdp(sdp(fmts=value)))
    assert only_bad is None  # nothing usable offered: the switch answers 488
    for kwargs in ({"fmts": f"0 {value}"}, {"fmtp": value}, {"pt": value}, {"rate": value}):
        answer = negotiate(parse_sdp(sdp(**kwargs)))
        assert answer is not None and answer.payload_type == 0, kwargs


def test_sdp_rtpmap_bounds() -> None:
    parsed = parse_sdp(sdp(rate=HUGE))
    assert 101 not in parsed.media[0].rtpmap  # a malformed rtpmap disables that format only
    parsed = parse_sdp(sdp().replace(b"telephone-event/8000", b"opus/48000/\xc2\xb2"))
    assert 101 not in parsed.media[0].rtpmap


def test_registrar_expires_is_clamped_or_default() -> None:
    assert _expires(None, 3600) == 3600
    assert _expires("0", 3600) == 0
    assert _expires(HUGE, 3600) == UINT32_MAX  # RFC 4475 scalar02
    for bad in ("\u00b2", "\u0663", "+5", "1_0"):
        assert _expires(bad, 3600) == 3600, bad


class _Resp:
    """Just what `_retry_after` and `_granted` read."""

    def __init__(self, **headers: str) -> None:
        from pbxcore.sip.message import Headers

        self.headers = Headers([(k.replace("_", "-"), v) for k, v in headers.items()])


def test_client_side_numbers_from_a_registrar() -> None:
    assert _retry_after(_Resp(Retry_After="120 (busy);duration=60")) == 120.0  # type: ignore[arg-type]
    assert _retry_after(_Resp(Retry_After=HUGE)) == float(UINT32_MAX)  # type: ignore[arg-type]
    assert _retry_after(_Resp(Retry_After="\u00b2")) == 0.0  # type: ignore[arg-type]
    assert _granted(_Resp(Expires=HUGE), "<sip:x@h>", 60) == UINT32_MAX  # type: ignore[arg-type]
    assert _granted(_Resp(Expires="\u00b2"), "<sip:x@h>", 60) == 60  # type: ignore[arg-type]
    contact = _Resp(Contact="<sip:x@h>;expires=\u00b2")
    assert _granted(contact, "sip:x@h", 60) == 60  # type: ignore[arg-type]


def test_a_malformed_ack_gets_no_stateless_answer() -> None:
    """RFC 3261 §17: an ACK is never answered, even when it does not parse (found by the TU
    fuzz: an ACK with a 5,000-digit Max-Forwards got a 400)."""
    from pbxcore.sip.stateless import error_response

    bad = request(max_forwards=HUGE)
    assert error_response(bad, 400, "Bad Request") is not None
    ack = bad.replace(b"OPTIONS sip:", b"ACK sip:").replace(b" OPTIONS\r\n", b" ACK\r\n")
    assert error_response(ack, 400, "Bad Request") is None
