"""Two media sessions connected through the switch (media anchored: RFC 3550 §7 translator).

Each packet one leg receives is relayed at once by the other leg's socket — no pacing, no
buffering, so the relay adds only the time to run one callback.  RFC 4733 events pass through on
the other side's negotiated payload type.  Optionally the conversation is recorded: each side's
decoded audio is placed on a shared timeline by arrival time, giving a stereo WAV (caller left,
callee right) and a mono mix, the mix being what `play recording:` can play back.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from pathlib import Path

from pbxcore.media.session import MediaSession
from pbxcore.media.wav import write_wav
from pbxcore.rtp.g711 import DECODERS
from pbxcore.rtp.packet import RtpPacket

RATE = 8000


class CallRecorder:
    """Both directions of a conversation on one timeline, written as mono mix + stereo."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self._sides = (array("h"), array("h"))

    def add(self, side: int, pcm16: bytes) -> None:
        buf = self._sides[side]
        at = int((time.monotonic() - self.start) * RATE)
        if len(buf) < at - RATE // 10:  # more than 100 ms behind: a pause, fill with silence
            buf.frombytes(bytes(2 * (at - len(buf))))
        buf.frombytes(pcm16)

    def seconds(self) -> float:
        return max(len(self._sides[0]), len(self._sides[1])) / RATE

    def render(self) -> tuple[bytes, bytes]:
        """(mono mix, stereo interleaved) 16-bit little-endian PCM."""
        left, right = self._sides
        n = max(len(left), len(right))
        left = left + array("h", bytes(2 * (n - len(left))))
        right = right + array("h", bytes(2 * (n - len(right))))
        mix = array("h", (max(-32768, min(32767, a + b)) for a, b in zip(left, right, strict=True)))
        stereo = array("h", bytes(4 * n))
        stereo[0::2] = left
        stereo[1::2] = right
        return mix.tobytes(), stereo.tobytes()

    async def write(self, mono_path: Path) -> Path:
        """Write NAME.wav (mix) and NAME-stereo.wav; returns the stereo path."""
        mix, stereo = await asyncio.to_thread(self.render)
        stereo_path = mono_path.with_name(mono_path.stem + "-stereo.wav")
        await asyncio.to_thread(write_wav, mono_path, mix)
        await asyncio.to_thread(write_wav, stereo_path, stereo, channels=2)
        return stereo_path


class Bridge:
    """Relays RTP both ways between `a` (the caller) and `b` (the callee) until `stop()`."""

    def __init__(self, a: MediaSession, b: MediaSession) -> None:
        self.a = a
        self.b = b
        self.recorder: CallRecorder | None = None
        self.relayed = 0
        # Hold time for the CDR leg (reports' hold time): while either side holds.
        self._holders: set[str] = set()
        self._hold_since = 0.0
        self._held = 0.0

    def start(self) -> None:
        self._holders.clear()  # a new callee (after a transfer) starts off hold
        for leg in (self.a, self.b):
            leg.stop_playing()
            leg.set_background(None)
            leg.relaying = True
            leg.forward = self._forward

    def _forward(self, source: MediaSession, pkt: RtpPacket, dtmf: bool) -> None:
        target = self.b if source is self.a else self.a
        target.relay(pkt, source, dtmf)
        self.relayed += 1
        if self.recorder is not None and not dtmf and source.codec is not None:
            self.recorder.add(0 if source is self.a else 1, DECODERS[source.codec](pkt.payload))

    def hold(self, holder: MediaSession, held: bool, music: bytes | None) -> None:
        """`holder` put the call on hold (RFC 3264 §8.4): the other side hears `music` instead
        of the relay until it resumes."""
        other = self.b if holder is self.a else self.a
        other.relaying = not held
        other.set_background(music if held else None)
        was, now = bool(self._holders), time.monotonic()
        side = "a" if holder is self.a else "b"
        if held:
            self._holders.add(side)
        else:
            self._holders.discard(side)
        if was and not self._holders:
            self._held += now - self._hold_since
        elif self._holders and not was:
            self._hold_since = now

    def take_hold_seconds(self) -> float:
        """Seconds on hold since the last call (or the start), counting a hold in progress up
        to now; the count restarts (for the next callee's CDR leg)."""
        now = time.monotonic()
        total = self._held + (now - self._hold_since if self._holders else 0.0)
        self._held, self._hold_since = 0.0, now
        return total

    def stop(self) -> None:
        for leg in (self.a, self.b):
            leg.forward = None
            leg.relaying = False
