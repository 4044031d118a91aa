"""Tone generation for ringback, beeps and tests: 8 kHz signed 16-bit little-endian PCM.

Pure; a call engine plays these through MediaSession.play / set_background.
"""

from __future__ import annotations

import math
from array import array

RATE = 8000
"""Samples per second for every narrowband stream here."""


def silence(ms: int) -> bytes:
    """`ms` milliseconds of zero samples."""
    return bytes(2 * (RATE * ms // 1000))


def tone(freq_hz: float | tuple[float, ...], ms: int, *, amplitude: int = 8000) -> bytes:
    """A sine (or the sum of several, e.g. (440, 480)) lasting `ms`; peak `amplitude`.

    For several frequencies the amplitude is shared so the sum never clips.
    """
    freqs = (freq_hz,) if isinstance(freq_hz, int | float) else tuple(freq_hz)
    if not freqs or not 0 <= amplitude <= 32767:
        raise ValueError("need at least one frequency and 0 <= amplitude <= 32767")
    n = RATE * ms // 1000
    part = amplitude / len(freqs)
    steps = [2 * math.pi * f / RATE for f in freqs]
    samples = array("h", (round(sum(part * math.sin(w * i) for w in steps)) for i in range(n)))
    if array("h", [1]).tobytes() != b"\x01\x00":
        samples.byteswap()
    return samples.tobytes()


def cadence(on: bytes, off_ms: int) -> bytes:
    """One period of a cadence: the tone, then silence (loop it with set_background)."""
    return on + silence(off_ms)


def ringback_us() -> bytes:
    """North American ringback: 440+480 Hz, 2 s on, 4 s off (one period)."""
    return cadence(tone((440, 480), 2000, amplitude=6000), 4000)


def ringback_eu() -> bytes:
    """European (ETSI) ringback: 425 Hz, 1 s on, 4 s off (one period)."""
    return cadence(tone(425, 1000, amplitude=6000), 4000)


def beep(ms: int = 250) -> bytes:
    """The record beep: 1 kHz."""
    return tone(1000, ms, amplitude=8000)
