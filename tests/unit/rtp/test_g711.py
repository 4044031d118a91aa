"""G.711 tables against audioop (the deprecated stdlib codec) as the oracle."""

from __future__ import annotations

import math
import struct
import warnings
from array import array

import pytest

from pbxcore.rtp import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_CODES = bytes(range(256))
ALL_SAMPLES = array("h", range(-32768, 32768)).tobytes()


def test_ulaw_decode_all_codes() -> None:
    assert g711.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_all_codes() -> None:
    assert g711.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_ulaw_encode_every_sample() -> None:
    assert g711.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)


def test_alaw_encode_every_sample() -> None:
    assert g711.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES, 2)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_decoded_codes_reencode_to_themselves(codec: str) -> None:
    pcm = g711.DECODERS[codec](ALL_CODES)
    again = g711.ENCODERS[codec](pcm)
    # µ-law has two zeros (0x7f and 0xff); both decode to 0, which encodes as 0xff.
    assert g711.DECODERS[codec](again) == pcm


def test_known_values() -> None:
    assert g711.ulaw_encode(b"\x00\x00") == b"\xff"
    assert g711.alaw_encode(b"\x00\x00") == b"\xd5"
    assert g711.ulaw_decode(b"\x00") == struct.pack("<h", -32124)
    assert g711.alaw_decode(b"\xaa") == struct.pack("<h", 32256)
    assert bytes([g711.SILENCE_CODE["PCMU"]]) == g711.ulaw_encode(b"\x00\x00")


def test_odd_length_pcm_refused() -> None:
    with pytest.raises(ValueError, match="even number"):
        g711.ulaw_encode(b"\x00")


def test_empty_input() -> None:
    assert g711.ulaw_encode(b"") == b"" and g711.alaw_decode(b"") == b""


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_mean_square_matches_decoded_rms(codec: str) -> None:
    pcm = array("h", (int(5000 * math.sin(i / 3)) for i in range(160))).tobytes()
    coded = g711.ENCODERS[codec](pcm)
    decoded = array("h", g711.DECODERS[codec](coded))
    expected = sum(s * s for s in decoded) / len(decoded)
    assert g711.mean_square(codec, coded) == pytest.approx(expected)
    assert math.sqrt(expected) == pytest.approx(audioop.rms(pcm, 2), rel=0.05)
    assert g711.mean_square(codec, b"") == 0.0
