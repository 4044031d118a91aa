"""SDP parsing and offer/answer (RFC 8866, RFC 3264) with offers real peers send (docs/peers.md)."""

from __future__ import annotations

import pytest

from pbxcore.sip.sdp import (
    AudioAnswer,
    SdpError,
    build_answer,
    build_offer,
    negotiate,
    parse_sdp,
)


def crlf(text: str) -> bytes:
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines()).encode()


SIPP = crlf("""
    v=0
    o=user1 53655765 2353687637 IN IP4 127.0.0.1
    s=-
    c=IN IP4 127.0.0.1
    t=0 0
    m=audio 6100 RTP/AVP 0 96
    a=rtpmap:0 PCMU/8000
    a=rtpmap:96 telephone-event/8000
    a=fmtp:96 0-15
    a=sendrecv
""")

# pyVoIP 1.6.8 (SIP.py gen_answer/gen_invite) with its default myIP: c=0.0.0.0
PYVOIP = (
    crlf("""
    v=0
    o=pyVoIP 1234 1236 IN IP4 0.0.0.0
    s=pyVoIP 1.6.8
    c=IN IP4 0.0.0.0
    t=0 0
    m=audio 40012 RTP/AVP 0 101
    a=rtpmap:0 PCMU/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=ptime:20
    a=maxptime:150
    a=sendrecv
""")
    + b"\r\n"
)  # pyVoIP issue #95: a body that ends in a blank line

PJSUA2 = crlf("""
    v=0
    o=- 3913286331 3913286331 IN IP4 127.0.0.1
    s=pjmedia
    b=AS:84
    t=0 0
    a=X-nat:0
    m=audio 4100 RTP/AVP 8 0 120
    c=IN IP4 127.0.0.1
    b=TIAS:64000
    a=rtcp:4101 IN IP4 127.0.0.1
    a=sendrecv
    a=rtpmap:8 PCMA/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:120 telephone-event/8000
    a=fmtp:120 0-16
    a=ssrc:1543217521 cname:2cfa4b3d59f14e57
""")

LINPHONE = crlf("""
    v=0
    o=1001 3358 1881 IN IP4 127.0.0.1
    s=Talk
    c=IN IP4 127.0.0.1
    t=0 0
    a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
    m=audio 7078 RTP/AVP 96 97 98 0 8 18 99 100 101
    a=rtpmap:96 opus/48000/2
    a=fmtp:96 useinbandfec=1
    a=rtpmap:97 speex/16000
    a=fmtp:97 vbr=on
    a=rtpmap:98 speex/8000
    a=fmtp:98 vbr=on
    a=fmtp:18 annexb=yes
    a=rtpmap:99 telephone-event/48000
    a=rtpmap:100 telephone-event/16000
    a=rtpmap:101 telephone-event/8000
    a=rtcp-fb:* trr-int 1000
    a=rtcp-fb:* ccm tmmbr
""")


def test_parse_sipp_offer() -> None:
    sd = parse_sdp(SIPP)
    assert sd.origin == ("user1", "53655765", "2353687637", "IN", "IP4", "127.0.0.1")
    assert sd.connection == "127.0.0.1"
    (m,) = sd.media
    assert (m.media, m.port, m.proto, m.payload_types) == ("audio", 6100, "RTP/AVP", (0, 96))
    assert m.rtpmap[96].encoding == "telephone-event" and m.rtpmap[96].clock_rate == 8000
    assert m.fmtp == {96: "0-15"}
    assert m.direction == "sendrecv"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (SIPP, AudioAnswer("PCMU", 0, 96, "127.0.0.1", 6100, "sendrecv")),
        (PYVOIP, AudioAnswer("PCMU", 0, 101, "0.0.0.0", 40012, "sendrecv", hold=True)),
        (PJSUA2, AudioAnswer("PCMA", 8, 120, "127.0.0.1", 4100, "sendrecv")),
        (LINPHONE, AudioAnswer("PCMU", 0, 101, "127.0.0.1", 7078, "sendrecv")),
    ],
    ids=["sipp-pt96", "pyvoip-pt101-c0000", "pjsua2-pcma-first-pt120", "linphone-many-codecs"],
)
def test_negotiate_real_offers(body: bytes, expected: AudioAnswer) -> None:
    got = negotiate(parse_sdp(body))
    assert got is not None
    fields = (
        "codec",
        "payload_type",
        "dtmf_payload_type",
        "remote_host",
        "remote_port",
        "direction",
        "hold",
    )
    assert {f: getattr(got, f) for f in fields} == {f: getattr(expected, f) for f in fields}


def test_supported_order_does_not_override_offer_order() -> None:
    got = negotiate(parse_sdp(PJSUA2), supported=("PCMU", "PCMA"))
    assert got is not None and got.codec == "PCMA"
    only_u = negotiate(parse_sdp(PJSUA2), supported=("PCMU",))
    assert only_u is not None and (only_u.codec, only_u.payload_type) == ("PCMU", 0)


def test_dynamic_pt_for_g711_via_rtpmap() -> None:
    body = SIPP.replace(b"RTP/AVP 0 96", b"RTP/AVP 112 96").replace(
        b"rtpmap:0 PCMU", b"rtpmap:112 pcmu"
    )
    got = negotiate(parse_sdp(body))
    assert got is not None and (got.codec, got.payload_type) == ("PCMU", 112)


def test_static_pt_without_rtpmap() -> None:
    body = crlf("""
        v=0
        o=- 1 1 IN IP4 10.0.0.1
        s=-
        c=IN IP4 10.0.0.1
        t=0 0
        m=audio 5004 RTP/AVP 8
    """)
    got = negotiate(parse_sdp(body))
    assert got is not None
    assert (got.codec, got.payload_type, got.dtmf_payload_type) == ("PCMA", 8, None)


@pytest.mark.parametrize(
    "mline",
    [
        "m=audio 6100 RTP/AVP 18 96",  # G.729 only
        "m=audio 6100 RTP/SAVP 0 96",  # SRTP: we have no keys
        "m=audio 0 RTP/AVP 0 96",  # stream disabled
        "m=video 6100 RTP/AVP 0",  # not audio
        "m=audio 6100 RTP/AVP 96",  # only telephone-event
    ],
)
def test_no_match_means_488(mline: str) -> None:
    body = SIPP.replace(b"m=audio 6100 RTP/AVP 0 96", mline.encode())
    assert negotiate(parse_sdp(body)) is None


def test_pcmu_at_16khz_is_not_pcmu() -> None:
    body = SIPP.replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:0 PCMU/16000")
    assert negotiate(parse_sdp(body)) is None


@pytest.mark.parametrize(
    ("attr", "ours"),
    [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
def test_direction_is_mirrored(attr: str, ours: str) -> None:
    got = negotiate(parse_sdp(SIPP.replace(b"a=sendrecv", f"a={attr}".encode())))
    assert got is not None and got.direction == ours


def test_session_level_direction_and_media_override() -> None:
    body = SIPP.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
    got = negotiate(parse_sdp(body.replace(b"a=sendrecv\r\n", b"")))
    assert got is not None and got.direction == "recvonly"
    got = negotiate(parse_sdp(body))  # media-level sendrecv wins
    assert got is not None and got.direction == "sendrecv"


def test_media_level_connection_wins_and_hold() -> None:
    body = SIPP.replace(b"a=sendrecv", b"c=IN IP4 0.0.0.0\r\na=sendonly")
    got = negotiate(parse_sdp(body))
    assert got is not None
    assert (got.remote_host, got.hold, got.direction) == ("0.0.0.0", True, "recvonly")


def test_lf_only_and_trailing_blank_lines() -> None:
    body = SIPP.replace(b"\r\n", b"\n") + b"\n\n\n"
    assert negotiate(parse_sdp(body)) == negotiate(parse_sdp(SIPP))


def test_missing_connection_everywhere_is_no_match() -> None:
    body = SIPP.replace(b"c=IN IP4 127.0.0.1\r\n", b"")
    assert negotiate(parse_sdp(body)) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "must start with a v= line"),
        (b"INVITE sip:a@b SIP/2.0\r\n", "must start with a v= line"),
        (b"v=0\r\nthis is not sdp\r\n", "not an SDP line"),
        (b"v=0\r\nm=audio x RTP/AVP 0\r\n", "bad port"),
        (b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "out of range"),
        (b"v=0\r\nm=audio\r\n", "bad m= line"),
        (b"v=0\r\nc=IN\r\n", "bad c= line"),
    ],
)
def test_unparseable(body: bytes, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_sdp(body)


def test_malformed_rtpmap_only_disables_that_format() -> None:
    body = LINPHONE.replace(b"a=rtpmap:96 opus/48000/2", b"a=rtpmap:96 opus")
    got = negotiate(parse_sdp(body))
    assert got is not None and got.codec == "PCMU"


def test_build_answer_exact() -> None:
    ans = negotiate(parse_sdp(PJSUA2))
    assert ans is not None
    body = build_answer(ans, local_host="127.0.0.1", local_port=20000, session_id=7, version=8)
    assert body == (
        b"v=0\r\no=pbxcore 7 8 IN IP4 127.0.0.1\r\ns=pbxcore\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 20000 RTP/AVP 8 120\r\na=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )


def test_answer_round_trips_and_rejects_other_streams() -> None:
    video_first = SIPP.replace(b"m=audio", b"m=video 9000 RTP/AVP 31\r\nm=audio")
    ans = negotiate(parse_sdp(video_first))
    assert ans is not None and ans.media_index == 1
    body = build_answer(ans, local_host="::1", local_port=30000, session_id=1, version=1)
    sd = parse_sdp(body)
    assert [(m.media, m.port) for m in sd.media] == [("video", 0), ("audio", 30000)]
    assert b"IN IP6 ::1" in body
    back = negotiate(sd)
    assert back is not None
    assert (back.codec, back.payload_type, back.dtmf_payload_type) == ("PCMU", 0, 96)
    assert (back.remote_host, back.remote_port) == ("::1", 30000)


def test_answer_without_dtmf() -> None:
    ans = AudioAnswer("PCMU", 0, None, "1.2.3.4", 5, "recvonly")
    body = build_answer(ans, local_host="1.1.1.1", local_port=4000, session_id=1, version=2)
    assert b"telephone-event" not in body and b"m=audio 4000 RTP/AVP 0\r\n" in body
    assert body.endswith(b"a=recvonly\r\n")


def test_build_offer_negotiates_with_itself() -> None:
    body = build_offer("127.0.0.1", 12000, 1, 1, codecs=("PCMA", "PCMU"), dtmf_pt=101)
    assert b"m=audio 12000 RTP/AVP 8 0 101\r\n" in body
    ans = negotiate(parse_sdp(body))
    assert ans is not None
    assert (ans.codec, ans.payload_type, ans.dtmf_payload_type, ans.remote_port) == (
        "PCMA",
        8,
        101,
        12000,
    )
    with pytest.raises(ValueError, match="unsupported codec"):
        build_offer("127.0.0.1", 12000, 1, 1, codecs=("G729",))


@pytest.mark.parametrize("base", [SIPP, PYVOIP, PJSUA2, LINPHONE])
def test_truncated_offers_raise_only_sdp_error(base: bytes) -> None:
    for cut in range(len(base)):
        try:
            sd = parse_sdp(base[:cut])
        except SdpError:
            continue
        negotiate(sd)  # must not raise either
