"""RFC 4733 telephone-events (DTMF) in RTP: payload codec, receiver, sender.

Theory of operation (receive). A sender emits, for one key press, a run of packets that
share one RTP timestamp (the event start, RFC 4733 §2.5.1.2): the first with the marker
bit, later ones with a growing duration, and the final one with the E bit, repeated
three times (§2.5.1.4). We report a digit exactly once, on the first end packet, and
ignore the repeats by remembering (ssrc, timestamp). If an event never shows an end
packet (all three lost), it is reported when the next event (a new timestamp) starts,
or by `poll(now)` after a quiet period.

Peers make this harder (docs/peers.md 1b, 2): sipp and pyVoIP send DTMF under their own SSRC,
so state is kept per SSRC; sipp's dtmf_2833_*.pcap files reuse one timestamp for every
play, so a start-of-event packet (marker bit, or a newer sequence number, without E) for
a timestamp that already ended starts a new event instead of being a late duplicate.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pbxcore.rtp.packet import RtpPacket

DIGITS = "0123456789*#ABCD"
"""Event codes 0-15 (RFC 4733 §3.2 table 1) as digit characters."""

_EVENT = struct.Struct("!BBH")
_MAX_SOURCES = 8  # bound the per-SSRC state a hostile peer can make us keep


class DtmfParseError(ValueError):
    """A telephone-event payload shorter than 4 bytes."""


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One telephone-event payload (RFC 4733 §2.3)."""

    event: int
    """Event code; 0-15 are the DTMF digits in DIGITS order."""
    end: bool
    """E bit: this is (a retransmission of) the final packet of the event."""
    volume: int
    """Power level in -dBm0, 0-63."""
    duration: int
    """Duration so far in timestamp units (1/8000 s for 8 kHz)."""

    @classmethod
    def parse(cls, payload: bytes) -> DtmfEvent:
        """Decode the first 4 bytes; extra bytes (RFC 4733 §2.5.1.5 multi-event) are ignored."""
        if len(payload) < 4:
            raise DtmfParseError(f"telephone-event payload of {len(payload)} bytes")
        event, flags, duration = _EVENT.unpack_from(payload, 0)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def to_bytes(self) -> bytes:
        """Encode; the R bit is always sent as 0 (§2.3)."""
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return _EVENT.pack(self.event & 0xFF, flags, self.duration & 0xFFFF)

    @property
    def digit(self) -> str | None:
        """The digit character, or None for a non-DTMF event (flash, tones...)."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def _seq_newer(a: int, b: int) -> bool:
    """a comes after b in 16-bit sequence space (RFC 3550 A.1 style)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


@dataclass(slots=True)
class _Source:
    timestamp: int
    digit: str
    ended: bool
    reported: bool
    last_seq: int
    last_seen: float


class DtmfReceiver:
    """Turns telephone-event packets (already filtered by payload type) into digits."""

    def __init__(self) -> None:
        self._sources: dict[int, _Source] = {}

    def feed(self, pkt: RtpPacket, now: float = 0.0) -> list[str]:
        """Digits completed by this packet, each reported once; `now` only feeds poll()."""
        try:
            ev = DtmfEvent.parse(pkt.payload)
        except DtmfParseError:
            return []
        digit = ev.digit
        if digit is None:
            return []
        out: list[str] = []
        src = self._sources.get(pkt.ssrc)
        if src is not None and src.timestamp == pkt.timestamp:
            restart = (
                src.ended and not ev.end and (pkt.marker or _seq_newer(pkt.sequence, src.last_seq))
            )
            if not restart:
                # Same event: a continuation, or a repeated end packet.
                if ev.end and not src.reported:
                    out.append(src.digit)
                    src.reported = True
                src.ended = src.ended or ev.end
                if _seq_newer(pkt.sequence, src.last_seq):
                    src.last_seq = pkt.sequence
                src.last_seen = now
                return out
        if src is not None and not src.reported:
            out.append(src.digit)  # previous event lost all its end packets
        if src is None and len(self._sources) >= _MAX_SOURCES:
            del self._sources[next(iter(self._sources))]
        self._sources[pkt.ssrc] = _Source(
            timestamp=pkt.timestamp,
            digit=digit,
            ended=ev.end,
            reported=ev.end,
            last_seq=pkt.sequence,
            last_seen=now,
        )
        if ev.end:
            out.append(digit)
        return out

    @property
    def pending(self) -> bool:
        """Some event has started but not been reported yet (poll() may report it)."""
        return any(not src.reported for src in self._sources.values())

    def poll(self, now: float, quiet: float = 1.0) -> list[str]:
        """Report events whose end packets never came and that went quiet for `quiet` s."""
        out: list[str] = []
        for src in self._sources.values():
            if not src.reported and now - src.last_seen >= quiet:
                src.reported = True
                out.append(src.digit)
        return out


def dtmf_packets(
    digit: str,
    *,
    pt: int,
    ssrc: int,
    seq: int,
    timestamp: int,
    duration_ms: int = 160,
    volume: int = 10,
) -> list[RtpPacket]:
    """The packets of one key press, one per 20 ms, per RFC 4733 §2.5.1.

    All carry `timestamp` (the event start); the first has the marker bit; the final
    packet (E bit, full duration) is sent three times, each with its own sequence number
    (§2.5.1.4). For duration_ms=160 this is 7 + 3 packets, like sipp's pcaps.
    """
    code = DIGITS.index(digit.upper()) if len(digit) == 1 and digit.upper() in DIGITS else -1
    if code < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    steps = max(1, duration_ms // 20)
    events = [DtmfEvent(code, False, volume, (k + 1) * 160) for k in range(steps - 1)]
    events += [DtmfEvent(code, True, volume, steps * 160)] * 3
    return [
        RtpPacket(
            payload_type=pt,
            sequence=(seq + i) & 0xFFFF,
            timestamp=timestamp & 0xFFFFFFFF,
            ssrc=ssrc,
            payload=ev.to_bytes(),
            marker=i == 0,
        )
        for i, ev in enumerate(events)
    ]
