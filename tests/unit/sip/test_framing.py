"""pbxcore.sip.framing: Content-Length framing of a stream, keep-alives, bounds (RFC 3261 §18.3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcore.sip.framing import PING, FramingError, StreamFramer
from pbxcore.sip.message import SipSyntaxError, parse_message

DIR = Path(__file__).parent / "captures" / "rfc4475"
FILES = sorted(DIR.glob("*.sip"))

MSG1 = (
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
    b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 12\r\n\r\nv=0\r\ns=-\r\n\r\n"  # body ends in CRLFCRLF
)
MSG2 = (
    b"BYE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK2\r\n"
    b"f: <sip:a@h>;tag=1\r\nt: <sip:b@h>;tag=2\r\ni: 1\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n"
)


def feed_all(framer: StreamFramer, chunks: list[bytes]) -> tuple[list[bytes], str | None]:
    """Frames produced (including those carried by a FramingError) and the error, if any."""
    frames: list[bytes] = []
    for chunk in chunks:
        try:
            frames += framer.feed(chunk)
        except FramingError as exc:
            return frames + exc.frames, exc.reason
    return frames, None


def test_one_message() -> None:
    f = StreamFramer()
    assert f.feed(MSG1) == [MSG1]
    assert f.buffered == 0
    assert parse_message(MSG1, stream=True).body == b"v=0\r\ns=-\r\n\r\n"


def test_two_messages_in_one_read() -> None:
    assert StreamFramer().feed(MSG1 + MSG2) == [MSG1, MSG2]


def test_split_at_every_offset() -> None:
    data = MSG1 + MSG2
    for cut in range(len(data) + 1):
        f = StreamFramer()
        frames = f.feed(data[:cut]) + f.feed(data[cut:])
        assert frames == [MSG1, MSG2], cut
        assert f.buffered == 0


def test_partial_read_waits() -> None:
    f = StreamFramer()
    assert f.feed(MSG1[:-5]) == []
    assert f.buffered == len(MSG1) - 5
    assert f.feed(MSG1[-5:]) == [MSG1]


def test_keepalive_ping_between_messages() -> None:
    f = StreamFramer()
    assert f.feed(PING + MSG1 + PING + PING + MSG2 + PING) == [PING, MSG1, PING, PING, MSG2, PING]


def test_keepalive_ping_byte_by_byte() -> None:
    f = StreamFramer()
    out: list[bytes] = []
    for b in PING + MSG2:
        out += f.feed(bytes([b]))
    assert out == [PING, MSG2]


def test_lone_crlf_pong_dropped() -> None:
    f = StreamFramer()
    assert f.feed(b"\r\n") == []  # could still become a ping
    assert f.feed(MSG2) == [MSG2]
    assert f.feed(b"\r\n" + MSG2) == [MSG2]


def test_content_length_larger_than_data_waits() -> None:
    # RFC 4475 §3.1.2.2 clerr over TCP: keep waiting, the adapter's idle timer closes
    data = (DIR / "clerr.sip").read_bytes()
    f = StreamFramer()
    assert f.feed(data) == []
    assert f.buffered == len(data)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"", "no Content-Length"),
        (b"Content-Length: -999\r\n", "bad Content-Length"),
        (b"Content-Length: five\r\n", "bad Content-Length"),
        (b"Content-Length: 13\r\nContent-Length: 5\r\n", "more than one"),
        (b"l: 5, 5\r\n", "more than one"),
        (b"Content-Length: 99999999999999999\r\n", "bad Content-Length"),
    ],
)
def test_unframeable(header: bytes, reason: str) -> None:
    data = b"OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\n" + header + b"\r\n"
    f = StreamFramer()
    with pytest.raises(FramingError, match=reason) as err:
        f.feed(data)
    assert err.value.status == 400
    assert isinstance(err.value, SipSyntaxError)
    with pytest.raises(FramingError):  # stays broken
        f.feed(MSG2)


def test_folded_and_lower_case_content_length() -> None:
    data = b"OPTIONS sip:x SIP/2.0\r\ncontent-LENGTH :\r\n 3\r\n\r\nabc"
    assert StreamFramer().feed(data) == [data]


def test_good_frames_before_an_error_are_delivered() -> None:
    frames, reason = feed_all(StreamFramer(), [MSG1 + b"garbage\r\n\r\n"])
    assert frames == [MSG1] and reason is not None


def test_header_bound() -> None:
    f = StreamFramer(max_header_bytes=100)
    with pytest.raises(FramingError, match="header section"):
        f.feed(b"OPTIONS sip:x SIP/2.0\r\nX: " + b"a" * 100)
    f = StreamFramer(max_header_bytes=100)
    with pytest.raises(FramingError, match="header section"):
        f.feed(b"OPTIONS sip:x SIP/2.0\r\nX: " + b"a" * 100 + b"\r\nl: 0\r\n\r\n")
    assert StreamFramer(max_header_bytes=100).feed(b"X\r\nl: 0\r\n\r\n") == [b"X\r\nl: 0\r\n\r\n"]


def test_body_bound() -> None:
    f = StreamFramer(max_body_bytes=10)
    with pytest.raises(FramingError, match="body"):
        f.feed(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 11\r\n\r\n")
    assert StreamFramer(max_body_bytes=10).feed(b"M\r\nl: 10\r\n\r\n" + b"x" * 10) == [
        b"M\r\nl: 10\r\n\r\n" + b"x" * 10
    ]


def test_memory_bounded_under_slow_drip() -> None:
    f = StreamFramer(max_header_bytes=1000)
    with pytest.raises(FramingError):
        for _ in range(2000):
            f.feed(b"a")
    assert f.buffered <= 1001


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_rfc4475_whole_versus_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    whole = feed_all(StreamFramer(), [data])
    single = feed_all(StreamFramer(), [data[i : i + 1] for i in range(len(data))])
    assert whole == single
    frames, reason = whole
    if path.stem in ("clerr",):
        assert frames == [] and reason is None
    elif path.stem in ("inv2543", "ncl", "mcl01"):
        assert frames == [] and reason is not None
    elif path.stem == "dblreq":
        # REGISTER, then the INVITE-looking octets are a second message on a stream, then the
        # octets past that one's Content-Length are garbage without a Content-Length.
        assert len(frames) == 2 and frames[0].startswith(b"REGISTER") and reason is not None
    else:
        assert frames == [data] and reason is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([MSG1, MSG2, PING]), max_size=6), st.data())
def test_property_any_chunking_same_frames(messages: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    f = StreamFramer()
    frames: list[bytes] = []
    for chunk in chunks:
        frames += f.feed(chunk)
    assert frames == messages
    assert f.buffered == 0
