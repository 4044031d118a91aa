"""RTP header parsing and serialising (RFC 3550 §5.1, §5.3.1), byte-exact."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxcore.rtp.packet import RtpPacket, RtpParseError, parse_rtp, rtp_header

PAYLOAD = bytes(range(160))
# V=2, PT 0, seq 0x1234, ts 0x00000a0b, SSRC 0xdeadbeef: a PCMU packet as captured.
PLAIN = bytes.fromhex("80001234 00000a0b deadbeef".replace(" ", "")) + PAYLOAD


def test_plain_packet_fields() -> None:
    pkt = parse_rtp(PLAIN)
    assert pkt == RtpPacket(0, 0x1234, 0xA0B, 0xDEADBEEF, PAYLOAD, marker=False, csrc=())
    assert pkt.to_bytes() == PLAIN


def test_marker_and_dynamic_pt() -> None:
    data = bytes.fromhex("80e56501ffffffff0e05384e") + bytes.fromhex("018a00a0")
    pkt = parse_rtp(data)
    assert (pkt.payload_type, pkt.marker, pkt.sequence) == (101, True, 0x6501)
    assert (pkt.timestamp, pkt.ssrc, pkt.payload) == (0xFFFFFFFF, 0x0E05384E, b"\x01\x8a\x00\xa0")
    assert pkt.to_bytes() == data


def test_csrc_list() -> None:
    data = bytes.fromhex("8208000100000002000000030000000a0000000b") + b"\xd5" * 4
    pkt = parse_rtp(data)
    assert pkt.csrc == (10, 11)
    assert pkt.payload == b"\xd5" * 4
    assert pkt.payload_type == 8
    assert pkt.to_bytes() == data


def test_header_extension_is_skipped() -> None:
    # X bit; profile 0xBEDE, length 2 words, 8 bytes of extension, then the payload.
    ext = bytes.fromhex("bede0002") + bytes(range(1, 9))
    data = bytes.fromhex("9000000100000002000000aa") + ext + PAYLOAD
    pkt = parse_rtp(data)
    assert pkt.payload == PAYLOAD  # pyVoIP's parser returns 168 bytes here
    assert pkt.to_bytes() == bytes.fromhex("8000000100000002000000aa") + PAYLOAD


def test_padding_is_stripped() -> None:
    data = bytes.fromhex("a000000100000002000000aa") + PAYLOAD + b"\x00\x00\x00\x04"
    assert parse_rtp(data).payload == PAYLOAD


def test_csrc_extension_and_padding_together() -> None:
    data = (
        bytes.fromhex("b100000100000002000000aa")
        + bytes.fromhex("00000007")
        + bytes.fromhex("10000001")
        + b"ABCD"
        + b"xy"
        + b"\x00\x02"
    )
    pkt = parse_rtp(data)
    assert (pkt.csrc, pkt.payload) == ((7,), b"xy")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short: 0 bytes"),
        (bytes(11), "too short: 11 bytes"),
        (bytes.fromhex("40000001000000020000000300"), "version 1, expected 2"),
        (bytes.fromhex("830000010000000200000003") + bytes(8), "CSRC list"),
        (bytes.fromhex("9000000100000002000000aa") + b"\xbe\xde", "extension truncated"),
        (bytes.fromhex("9000000100000002000000aabede0005") + bytes(8), "extension longer"),
        (bytes.fromhex("a000000100000002000000aa") + b"ab\x00", "bad RTP padding length 0"),
        (bytes.fromhex("a000000100000002000000aa") + b"ab\x09", "bad RTP padding length 9"),
    ],
)
def test_invalid_packets(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        parse_rtp(data)


def test_parse_error_is_value_error() -> None:
    assert issubclass(RtpParseError, ValueError)


def test_rtp_header_matches_dataclass() -> None:
    pkt = RtpPacket(96, 65535, 2**32 - 1, 1, b"", marker=True)
    assert rtp_header(96, 65535, 2**32 - 1, 1, True) == pkt.to_bytes()


def test_too_many_csrcs_refused() -> None:
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, b"", csrc=tuple(range(16))).to_bytes()


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
)
def test_round_trip(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool, csrc: tuple[int, ...]
) -> None:
    pkt = RtpPacket(pt, seq, ts, ssrc, payload, marker, csrc)
    assert parse_rtp(pkt.to_bytes()) == pkt


@given(st.binary(max_size=64))
def test_garbage_never_crashes_with_anything_but_parse_error(data: bytes) -> None:
    try:
        pkt = parse_rtp(data)
    except RtpParseError:
        return
    assert len(pkt.payload) <= len(data) - 12
