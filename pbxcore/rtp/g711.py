"""G.711 µ-law and A-law (ITU-T G.711) by table lookup.

Tables are built once at import from the reference algorithm (the Sun/CCITT code that
audioop also uses, so results are bit-identical to audioop, which is deprecated in 3.11
and gone in 3.13; tests use it only as an oracle).

Decode: every code maps to a 16-bit sample; we split the table into a low-byte and a
high-byte 256-entry translation table and interleave two `bytes.translate` results into
a bytearray by extended-slice assignment, so no Python-level loop runs per sample.
Encode: a 65536-entry table indexed by the unsigned 16-bit sample, applied with
a list comprehension over `memoryview.cast("H")` (about 40 ns a sample here;
encode a prompt once, not per packet).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable

_BIG_ENDIAN = sys.byteorder == "big"

# µ-law segment ends for 14-bit magnitudes, A-law for 13-bit (G.711 tables 1a/2a).
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for i, end in enumerate(ends):
        if value <= end:
            return i
    return len(ends)


def _ulaw_from_linear(sample: int) -> int:
    pcm = sample >> 2  # µ-law works on 14 bits
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + 33  # clip, then add the bias (0x84 >> 2)
    seg = _segment(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _alaw_from_linear(sample: int) -> int:
    pcm = sample >> 3  # A-law works on 13 bits
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    seg = _segment(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((pcm >> 1) if seg < 2 else (pcm >> seg)) & 0x0F
    return aval ^ mask


def _ulaw_to_linear(code: int) -> int:
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def _alaw_to_linear(code: int) -> int:
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _encode_table(fn: Callable[[int], int], shift: int) -> bytes:
    # The codec only sees sample >> shift, so evaluate it once per distinct value, then
    # expand to an index of all 65536 sample bit patterns read as unsigned 16-bit.
    half = 32768 >> shift
    small = [fn(k << shift) for k in range(-half, half)]
    return bytes(small[((u - 65536 if u >= 32768 else u) >> shift) + half] for u in range(65536))


def _decode_tables(fn: Callable[[int], int]) -> tuple[bytes, bytes]:
    values = [fn(c) & 0xFFFF for c in range(256)]
    return bytes(v & 0xFF for v in values), bytes(v >> 8 for v in values)


ULAW_DECODE: tuple[int, ...] = tuple(_ulaw_to_linear(c) for c in range(256))
"""µ-law code -> signed 16-bit sample."""
ALAW_DECODE: tuple[int, ...] = tuple(_alaw_to_linear(c) for c in range(256))
"""A-law code -> signed 16-bit sample."""

_ULAW_ENC = _encode_table(_ulaw_from_linear, 2)
_ALAW_ENC = _encode_table(_alaw_from_linear, 3)
_ULAW_LO, _ULAW_HI = _decode_tables(_ulaw_to_linear)
_ALAW_LO, _ALAW_HI = _decode_tables(_alaw_to_linear)

ULAW_SILENCE = 0xFF
"""µ-law code for a zero sample."""
ALAW_SILENCE = 0xD5
"""A-law code for a zero sample."""


def _samples(pcm16le: bytes) -> memoryview | array[int]:
    if len(pcm16le) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    if _BIG_ENDIAN:
        a = array("H", pcm16le)
        a.byteswap()
        return a
    return memoryview(pcm16le).cast("B").cast("H")


def _encode(pcm16le: bytes, table: bytes) -> bytes:
    # A list comprehension measured faster than bytes(map(table.__getitem__, ...)).
    return bytes([table[s] for s in _samples(pcm16le)])


def _decode(data: bytes, lo: bytes, hi: bytes) -> bytes:
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(lo)
    out[1::2] = data.translate(hi)
    return bytes(out)


def ulaw_encode(pcm16le: bytes) -> bytes:
    """Signed 16-bit little-endian PCM -> µ-law, one byte per sample."""
    return _encode(pcm16le, _ULAW_ENC)


def alaw_encode(pcm16le: bytes) -> bytes:
    """Signed 16-bit little-endian PCM -> A-law, one byte per sample."""
    return _encode(pcm16le, _ALAW_ENC)


def ulaw_decode(data: bytes) -> bytes:
    """µ-law -> signed 16-bit little-endian PCM."""
    return _decode(bytes(data), _ULAW_LO, _ULAW_HI)


def alaw_decode(data: bytes) -> bytes:
    """A-law -> signed 16-bit little-endian PCM."""
    return _decode(bytes(data), _ALAW_LO, _ALAW_HI)


ENCODERS = {"PCMU": ulaw_encode, "PCMA": alaw_encode}
"""Codec name (SDP rtpmap encoding name) -> encoder."""
DECODERS = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
"""Codec name -> decoder."""
SILENCE_CODE = {"PCMU": ULAW_SILENCE, "PCMA": ALAW_SILENCE}
"""Codec name -> the code of a zero sample."""
STATIC_PT = {"PCMU": 0, "PCMA": 8}
"""RFC 3551 §6 static payload types."""

_SQUARES = {
    "PCMU": tuple(v * v for v in ULAW_DECODE),
    "PCMA": tuple(v * v for v in ALAW_DECODE),
}


def mean_square(codec: str, data: bytes) -> float:
    """Mean of the squared decoded samples of a G.711 payload, without decoding it
    (energy-based voice activity on received audio; sqrt gives the RMS)."""
    if not data:
        return 0.0
    return sum(map(_SQUARES[codec].__getitem__, data)) / len(data)

ENCODE_TABLES = {"PCMU": _ULAW_ENC, "PCMA": _ALAW_ENC}
"""Codec name -> 65536-entry table indexed by a sample read as unsigned 16-bit (`s & 0xFFFF`):
for encoders working on integer samples (the conference mixer, pbxcore.rtp.mix)."""
DECODE_TABLES = {"PCMU": ULAW_DECODE, "PCMA": ALAW_DECODE}
"""Codec name -> code-indexed tuple of signed samples."""
