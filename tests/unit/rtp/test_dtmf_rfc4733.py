"""RFC 4733 telephone-event receive and send, with the packet patterns real peers produce."""

from __future__ import annotations

import pytest

from pbxcore.rtp.dtmf import DtmfEvent, DtmfParseError, DtmfReceiver, dtmf_packets
from pbxcore.rtp.packet import RtpPacket, parse_rtp

SIPP_SSRC = 0x0E05384E  # every dtmf_2833_*.pcap in /usr/share/sip-tester uses it


def ev(code: int, end: bool, duration: int, volume: int = 10) -> bytes:
    return DtmfEvent(code, end, volume, duration).to_bytes()


def sipp_pcap_packets(code: int, seq0: int = 100, ts: int = 5000) -> list[RtpPacket]:
    """Like sipp's dtmf_2833_N.pcap: 10 packets, marker on the first, three end packets
    that share one sequence number, one fixed timestamp."""
    pkts = [
        RtpPacket(101, seq0 + k, ts, SIPP_SSRC, ev(code, False, (k + 1) * 160), marker=k == 0)
        for k in range(7)
    ]
    pkts += [RtpPacket(101, seq0 + 7, ts, SIPP_SSRC, ev(code, True, 1280))] * 3
    return pkts


def pyvoip_packets(
    digits: str, ssrc: int = 0x1234, seq: int = 30000, ts: int = 7
) -> list[RtpPacket]:
    """Like the send_rfc2833 workaround in docs/peers.md 1b: its own SSRC, every packet a new
    sequence number, the last three with the E bit, timestamp advanced per digit."""
    out = []
    steps = 8
    for d in digits:
        code = "0123456789*#ABCD".index(d)
        for k in range(steps + 2):
            end = k >= steps - 1
            payload = ev(code, end, min(k + 1, steps) * 160)
            out.append(RtpPacket(101, seq & 0xFFFF, ts, ssrc, payload, marker=k == 0))
            seq += 1
        ts += (steps + 5) * 160
    return out


def feed_all(rx: DtmfReceiver, pkts: list[RtpPacket]) -> list[str]:
    return [d for p in pkts for d in rx.feed(p)]


def test_event_bytes_rfc4733_layout() -> None:
    # event 5, E=1, R=0, volume 10, duration 1280 (§2.3 figure 1)
    assert DtmfEvent(5, True, 10, 1280).to_bytes() == bytes.fromhex("058a0500")
    assert DtmfEvent.parse(bytes.fromhex("0b0a00a0")) == DtmfEvent(11, False, 10, 160)
    assert DtmfEvent.parse(bytes.fromhex("0b4a00a0")).volume == 10  # R bit ignored
    assert DtmfEvent(11, False, 10, 160).digit == "#"
    assert DtmfEvent(16, False, 10, 160).digit is None  # flash


def test_short_event_payload() -> None:
    with pytest.raises(DtmfParseError):
        DtmfEvent.parse(b"\x01\x8a\x00")


def test_sipp_pcap_reports_once_on_first_end_packet() -> None:
    rx = DtmfReceiver()
    pkts = sipp_pcap_packets(1)
    results = [rx.feed(p) for p in pkts]
    assert results[7] == ["1"]
    assert sum(results, []) == ["1"]


def test_sipp_pcap_played_twice_is_two_digits() -> None:
    # Same SSRC, same timestamp, same sequence numbers: only the marker says "again".
    rx = DtmfReceiver()
    assert feed_all(rx, sipp_pcap_packets(1) + sipp_pcap_packets(1)) == ["1", "1"]


def test_sipp_different_pcaps_share_timestamp() -> None:
    rx = DtmfReceiver()
    pkts = (
        sipp_pcap_packets(1, seq0=10)
        + sipp_pcap_packets(11, seq0=10)
        + sipp_pcap_packets(4, seq0=10)
    )
    assert feed_all(rx, pkts) == ["1", "#", "4"]


def test_pyvoip_sequence() -> None:
    assert feed_all(DtmfReceiver(), pyvoip_packets("4321*#")) == list("4321*#")


def test_sequence_wraps() -> None:
    assert feed_all(DtmfReceiver(), pyvoip_packets("55", seq=65530)) == ["5", "5"]


def test_late_packet_after_end_is_not_a_new_event() -> None:
    rx = DtmfReceiver()
    pkts = pyvoip_packets("7")
    late = pkts[3]  # non-end, no marker, older sequence number, arrives after the end
    assert feed_all(rx, pkts + [late]) == ["7"]


def test_all_end_packets_lost_reported_when_next_event_starts() -> None:
    rx = DtmfReceiver()
    first = [p for p in pyvoip_packets("3", ts=0) if not DtmfEvent.parse(p.payload).end]
    second = pyvoip_packets("9", ts=4000, seq=500)
    assert [rx.feed(p) for p in first] == [[]] * len(first)
    assert rx.feed(second[0]) == ["3"]
    assert feed_all(rx, second[1:]) == ["9"]


def test_all_end_packets_lost_reported_by_poll_after_quiet() -> None:
    rx = DtmfReceiver()
    for p in pyvoip_packets("8"):
        if not DtmfEvent.parse(p.payload).end:
            assert rx.feed(p, now=10.0) == []
    assert rx.pending
    assert rx.poll(10.5) == []
    assert rx.poll(11.0) == ["8"]
    assert not rx.pending
    assert rx.poll(20.0) == []


def test_first_packets_lost_still_reported() -> None:
    pkts = pyvoip_packets("2")[4:]  # marker packet and more missing
    assert feed_all(DtmfReceiver(), pkts) == ["2"]


def test_second_ssrc_interleaved() -> None:
    a = pyvoip_packets("12", ssrc=1, seq=0, ts=0)
    b = pyvoip_packets("AB", ssrc=2, seq=9000, ts=99999)
    mixed = [p for pair in zip(a, b, strict=True) for p in pair]
    got = feed_all(DtmfReceiver(), mixed)
    assert sorted(got) == ["1", "2", "A", "B"]
    assert [d for d in got if d.isdigit()] == ["1", "2"]


def test_non_dtmf_events_and_short_payloads_ignored() -> None:
    rx = DtmfReceiver()
    assert rx.feed(RtpPacket(101, 1, 1, 1, ev(16, True, 800), marker=True)) == []
    assert rx.feed(RtpPacket(101, 2, 1, 1, b"\x01")) == []


def test_many_ssrcs_bounded_state() -> None:
    rx = DtmfReceiver()
    for s in range(100):
        assert rx.feed(RtpPacket(101, 1, 1, s, ev(0, True, 160), marker=True)) == ["0"]
    assert len(rx._sources) <= 8


def test_dtmf_packets_shape() -> None:
    pkts = dtmf_packets("#", pt=120, ssrc=42, seq=65534, timestamp=2**32 - 1)
    assert len(pkts) == 10
    assert [p.marker for p in pkts] == [True] + [False] * 9
    assert [p.sequence for p in pkts] == [(65534 + i) & 0xFFFF for i in range(10)]
    assert {p.timestamp for p in pkts} == {2**32 - 1}
    assert {(p.payload_type, p.ssrc) for p in pkts} == {(120, 42)}
    events = [DtmfEvent.parse(p.payload) for p in pkts]
    assert [e.end for e in events] == [False] * 7 + [True] * 3
    assert [e.duration for e in events] == [160 * k for k in range(1, 8)] + [1280] * 3
    assert {e.event for e in events} == {11}
    assert all(parse_rtp(p.to_bytes()) == p for p in pkts)


def test_dtmf_packets_round_trip_through_receiver() -> None:
    rx = DtmfReceiver()
    out: list[str] = []
    seq, ts = 0, 0
    for d in "0123456789*#ABCD":
        pkts = dtmf_packets(d.lower(), pt=101, ssrc=7, seq=seq, timestamp=ts, duration_ms=60)
        out += feed_all(rx, pkts)
        seq += len(pkts)
        ts += 800
    assert "".join(out) == "0123456789*#ABCD"


@pytest.mark.parametrize("bad", ["", "E", "12", "x"])
def test_dtmf_packets_refuses_non_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="not a DTMF digit"):
        dtmf_packets(bad, pt=101, ssrc=1, seq=0, timestamp=0)
