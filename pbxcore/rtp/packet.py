"""RTP packets (RFC 3550 §5.1): parse and serialise the fixed header.

Pure: bytes in, dataclass out. The parser skips a header extension (§5.3.1) and strips
padding (§5.1, P bit), which pyVoIP's parser does not (docs/peers.md 1b): a payload must be
exactly the codec bytes or G.711 decoding and DTMF parsing go wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")


class RtpParseError(ValueError):
    """The datagram is not a valid RTP packet (short, wrong version, bad lengths)."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet, header fields decoded."""

    payload_type: int
    """7-bit payload type (0 PCMU, 8 PCMA, dynamic 96-127 e.g. telephone-event)."""
    sequence: int
    """16-bit sequence number, wraps."""
    timestamp: int
    """32-bit media timestamp (8 kHz clock for G.711 and telephone-event)."""
    ssrc: int
    """Synchronisation source; a peer may send DTMF under a second SSRC."""
    payload: bytes
    """Payload with extension and padding removed."""
    marker: bool = False
    """M bit: first packet of a talkspurt, or the start of a DTMF event (RFC 4733 §2.5.1.3)."""
    csrc: tuple[int, ...] = ()
    """Contributing sources (at most 15)."""

    def to_bytes(self) -> bytes:
        """Serialise without padding or extension (we never send either)."""
        if len(self.csrc) > 15:
            raise ValueError("at most 15 CSRCs")
        b0 = (RTP_VERSION << 6) | len(self.csrc)
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        head = _HEADER.pack(
            b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF
        )
        if self.csrc:
            head += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        return head + self.payload


def rtp_header(payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool) -> bytes:
    """The 12-byte fixed header alone: the sender's hot path avoids building a dataclass."""
    return _HEADER.pack(
        0x80,
        (0x80 if marker else 0) | (payload_type & 0x7F),
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram; raise RtpParseError if it is not RTP version 2."""
    n = len(data)
    if n < 12:
        raise RtpParseError(f"RTP packet too short: {n} bytes")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpParseError(f"RTP version {version}, expected 2")
    cc = b0 & 0x0F
    pos = 12 + 4 * cc
    if pos > n:
        raise RtpParseError("RTP packet shorter than its CSRC list")
    csrc = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
    if b0 & 0x10:
        # RFC 3550 §5.3.1: 16-bit profile id, 16-bit length in 32-bit words, then the words.
        if pos + 4 > n:
            raise RtpParseError("RTP header extension truncated")
        (words,) = struct.unpack_from("!H", data, pos + 2)
        pos += 4 + 4 * words
        if pos > n:
            raise RtpParseError("RTP header extension longer than the packet")
    end = n
    if b0 & 0x20:
        # §5.1: the last octet counts the padding octets, itself included.
        pad = data[-1]
        if pad == 0 or end - pad < pos:
            raise RtpParseError(f"bad RTP padding length {pad}")
        end -= pad
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[pos:end]),
        marker=bool(b1 & 0x80),
        csrc=tuple(csrc),
    )
