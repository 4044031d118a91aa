"""Conference mixing of G.711 frames: every party hears the sum of the others, never itself.

Pure (no clock, no sockets): one call of :meth:`Mixer.mix` per 20 ms tick takes each party's
160 decoded samples (None: nothing to add — silent, muted, or no packet arrived this tick) and
returns what each party hears.  The classic "N-1" trick keeps the cost linear: the total of all
speakers is summed once, and a speaker's own frame is subtracted from it, so N parties cost
2N frame operations, not N².  A party that contributed nothing hears the plain total, which is
the *same* list object for all of them, so the caller can encode it once per codec and send the
same bytes to every listener (the common case: in a 20-party room a handful talk at once).

Arithmetic is on Python ints through `map(operator.add/sub, ...)`, which iterates in C; numpy is
no dependency of pbxcore.  Sums are exact (no overflow); clipping to 16 bits happens once, when
a frame is encoded (:func:`encode`), so a loud pair of speakers saturates instead of wrapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import add, sub

from pbxcore.rtp.g711 import DECODE_TABLES, ENCODE_TABLES

FRAME = 160
"""Samples per 20 ms frame at 8 kHz (RFC 3551 §4.5.14 G.711 at the default ptime)."""
SILENCE: tuple[int, ...] = (0,) * FRAME
"""A frame of zero samples; what a room with nobody talking sums to."""


def decode(codec: str, payload: bytes) -> list[int]:
    """A G.711 payload as signed samples, padded or cut to one frame."""
    samples = list(map(DECODE_TABLES[codec].__getitem__, payload[:FRAME]))
    if len(samples) < FRAME:
        samples.extend(repeat(0, FRAME - len(samples)))
    return samples


def _clip(s: int) -> int:
    return 32767 if s > 32767 else -32768 if s < -32768 else s


def encode(codec: str, samples: Sequence[int]) -> bytes:
    """Clip exact sums to 16 bits and encode them: one G.711 payload."""
    table = ENCODE_TABLES[codec]
    return bytes([table[(s if -32768 <= s <= 32767 else _clip(s)) & 0xFFFF] for s in samples])


class Mixer:
    """Mix-minus of one room's frames; keeps no state between ticks except its shape."""

    def mix(self, frames: Sequence[Sequence[int] | None],
            extra: Sequence[int] | None = None) -> tuple[Sequence[int], list[Sequence[int]]]:
        """(total, heard): heard[i] is the total minus frames[i] when party i spoke, else the
        total itself (the same object: encode once, send to all).  `extra` (a join tone) is
        added for everybody, the speakers included."""
        total: Sequence[int] = SILENCE if extra is None else extra
        speakers = 0
        for frame in frames:
            if frame is not None:
                total = list(map(add, total, frame))
                speakers += 1
        if speakers == 0:
            return total, [total] * len(frames)
        if speakers == 1 and extra is None:
            # One talker: the listeners hear just that frame; the talker hears silence.
            return total, [SILENCE if f is not None else total for f in frames]
        return total, [total if f is None else list(map(sub, total, f)) for f in frames]
