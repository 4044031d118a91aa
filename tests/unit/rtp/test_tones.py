"""Tone generation: length, level, no clipping on dual tones, cadences."""

from __future__ import annotations

import math
from array import array

import pytest

from pbxcore.rtp.tones import beep, cadence, ringback_eu, ringback_us, silence, tone


def rms(pcm: bytes) -> float:
    s = array("h", pcm)
    return math.sqrt(sum(x * x for x in s) / len(s))


def test_tone_length_and_level() -> None:
    pcm = tone(1000, 250, amplitude=8000)
    assert len(pcm) == 2 * 2000
    assert rms(pcm) == pytest.approx(8000 / math.sqrt(2), rel=0.01)
    assert max(array("h", pcm)) <= 8000


def test_frequency_by_zero_crossings() -> None:
    s = array("h", tone(425, 1000, amplitude=10000))
    crossings = sum(1 for a, b in zip(s, s[1:], strict=False) if a < 0 <= b)
    assert crossings == pytest.approx(425, abs=2)


def test_dual_tone_shares_amplitude() -> None:
    s = array("h", tone((440, 480), 2000, amplitude=30000))
    assert max(abs(x) for x in s) <= 30000
    assert max(abs(x) for x in s) > 29000


def test_silence_and_cadences() -> None:
    assert silence(20) == bytes(320)
    assert cadence(b"\x01\x00", 10) == b"\x01\x00" + bytes(160)
    assert len(ringback_us()) == 2 * 8000 * 6
    assert len(ringback_eu()) == 2 * 8000 * 5
    assert ringback_eu()[-16000:] == bytes(16000)
    assert len(beep()) == 2 * 2000


@pytest.mark.parametrize(("freq", "amp"), [((), 100), (440, 40000), (440, -1)])
def test_bad_arguments(freq: float | tuple[float, ...], amp: int) -> None:
    with pytest.raises(ValueError):
        tone(freq, 10, amplitude=amp)
