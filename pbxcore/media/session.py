"""One RTP stream per call leg: send prompts/background/silence, receive audio and DTMF.

Theory of operation. The shared Pacer calls `tick()` every 20 ms; each tick sends one
packet: a pending DTMF packet, else the next 160 samples of the current `play()`, else
the looped background (ringback, hold music), else silence, so the far end always gets
continuous RTP (pyVoIP and NAT bindings want it). One SSRC, continuous sequence numbers
and timestamps; the marker bit on the first packet and on the first audio after silence
(RFC 3551 §4.1). Audio is G.711-encoded once per prompt, not per packet.

Receive: packets are parsed; the first one carrying the negotiated codec latches the
send address (symmetric RTP, RFC 4961: the SDP c= may be a private or 0.0.0.0 address).
Packets are accepted from any source and any SSRC (sipp and pyVoIP send DTMF under their
own SSRC, sipp even from another port); unknown payload types are ignored (sipp's PT 97
no-ops, linphone's PT 1).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pbxcore.media.pacer import Pacer
from pbxcore.media.ports import PortAllocator
from pbxcore.media.wav import write_wav
from pbxcore.rtp.dtmf import DtmfReceiver, dtmf_packets
from pbxcore.rtp.g711 import DECODERS, ENCODERS, SILENCE_CODE, mean_square
from pbxcore.rtp.packet import RtpPacket, RtpParseError, parse_rtp, rtp_header
from pbxcore.sip.sdp import AudioAnswer

log = logging.getLogger(__name__)

FRAME = 160
"""Samples (and G.711 bytes) per 20 ms packet."""
VOICE_RMS = 300.0
"""RMS above which a received frame counts as voice (speech is ~1000-5000)."""
_MAX_GAP = 8000 * 5  # fill at most 5 s of lost packets with silence in a recording


class MediaClosedError(RuntimeError):
    """The session was closed while audio was still queued."""


_CACHE_BYTES = 32 << 20
_cache: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
_cache_size = 0


def encode_cached(codec: str, pcm: bytes) -> bytes:
    """G.711-encode with a shared LRU cache (bounded by total size): a prompt or ringback
    played on 200 calls is encoded once, not 200 times inside one pacer tick. Keyed by the
    PCM itself; CPython caches a bytes object's hash, so a hit on the same object is O(1)."""
    global _cache_size
    key = (codec, pcm)
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit
    encoded = ENCODERS[codec](pcm)
    if len(encoded) <= _CACHE_BYTES // 4:
        _cache[key] = encoded
        _cache_size += len(encoded) + len(pcm)
        while _cache_size > _CACHE_BYTES:
            (_, old_pcm), old = _cache.popitem(last=False)
            _cache_size -= len(old) + len(old_pcm)
    return encoded


@dataclass(eq=False)
class _Audio:
    """A PCM buffer plus its encoding for the current codec, made on first use."""

    pcm: bytes
    codec: str = ""
    encoded: bytes = b""
    pos: int = 0
    done: asyncio.Future[None] | None = field(default=None)

    def frames(self, codec: str) -> bytes:
        if self.codec != codec:
            self.encoded, self.codec = encode_cached(codec, self.pcm), codec
        return self.encoded


class _Protocol(asyncio.DatagramProtocol):
    session: MediaSession | None = None  # set right after the endpoint is created

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.session is not None:
            self.session._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the far end is not listening yet: keep sending.
        if self.session is not None:
            self.session.send_errors += 1


class MediaSession:
    """The RTP side of one call leg; create with `await MediaSession.open(...)`."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        local_port: int,
        allocator: PortAllocator,
        pacer: Pacer,
    ) -> None:
        self._transport = transport
        self.local_port = local_port
        self._allocator = allocator
        self._pacer = pacer
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.received_packets = 0
        self.sent_packets = 0
        self.ignored_packets = 0
        """Valid RTP with a payload type we did not negotiate."""
        self.invalid_packets = 0
        self.send_errors = 0
        self.codec: str | None = None
        self._pt = self._dtmf_pt = -1
        self._send_dtmf_pt: int | None = None
        self._direction = "sendrecv"
        self.remote: tuple[str, int] | None = None
        self._latched = False
        self._ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._marker = True
        self._plays: deque[_Audio] = deque()
        self._background: _Audio | None = None
        self._dtmf_out: deque[RtpPacket | None] = deque()  # None: a 20 ms gap
        self._dtmf_start = 0
        self._dtmf_rx = DtmfReceiver()
        self._dtmf_pending = False
        self._silence = b""
        self._recording: bytearray | None = None
        self._rec_path: Path | None = None
        self._rec_next_ts: dict[int, int] = {}
        self._last_voice = time.monotonic()
        self._closed = False
        self.forward: Callable[[MediaSession, RtpPacket, bool], None] | None = None
        """Bridging: called with (self, packet, is_dtmf) for each negotiated packet received."""
        self.relaying = False
        """Bridging: the pacer sends nothing; relay() sends what the other leg received."""
        self._relay_offsets: dict[int, int] = {}

    @classmethod
    async def open(cls, host: str, allocator: PortAllocator, pacer: Pacer) -> MediaSession:
        """Bind a port from the allocator on `host` and start ticking (silence until
        configured)."""
        sock = allocator.bind(host)
        port = sock.getsockname()[1]
        try:
            transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
                _Protocol, sock=sock
            )
        except BaseException:
            sock.close()
            allocator.release(port)
            raise
        session = cls(transport, port, allocator, pacer)
        protocol.session = session
        pacer.register(session)
        return session

    # -- configuration -------------------------------------------------------------

    def configure(self, answer: AudioAnswer) -> None:
        """Apply a negotiated answer (or re-INVITE): codec, payload types, remote."""
        if answer.codec not in ENCODERS:
            raise ValueError(f"unsupported codec {answer.codec}")
        self.codec = answer.codec
        self._pt = answer.payload_type
        self._dtmf_pt = answer.dtmf_payload_type if answer.dtmf_payload_type is not None else -1
        self._send_dtmf_pt = answer.dtmf_payload_type
        self._direction = answer.direction
        self._silence = bytes([SILENCE_CODE[answer.codec]]) * FRAME
        self.remote = None if answer.hold else (answer.remote_host, answer.remote_port)
        self._latched = False  # relearn from the next packet

    @property
    def is_configured(self) -> bool:
        """configure() has been called."""
        return self.codec is not None

    # -- sending -------------------------------------------------------------------

    async def play(self, pcm16: bytes) -> None:
        """Queue 8 kHz s16le audio; return once its last packet is sent.

        Cancelling the awaiting task drops this audio at once.
        """
        if self._closed:
            raise MediaClosedError("media session is closed")
        if len(pcm16) % 2:
            raise ValueError("16-bit PCM must have an even number of bytes")
        if not pcm16:
            return
        item = _Audio(pcm16, done=asyncio.get_running_loop().create_future())
        if self.codec is not None:
            item.frames(self.codec)  # encode now, not inside a pacer tick
        self._plays.append(item)
        assert item.done is not None
        try:
            await item.done
        finally:
            if item in self._plays:  # cancelled: stop now, drop the rest of this audio
                self._plays.remove(item)

    def stop_playing(self) -> None:
        """Drop all queued audio; pending play() calls return."""
        while self._plays:
            item = self._plays.popleft()
            if item.done is not None and not item.done.done():
                item.done.set_result(None)

    def set_background(self, pcm16: bytes | None) -> None:
        """Loop this audio whenever nothing is being played (None: silence)."""
        self._background = _Audio(pcm16) if pcm16 else None
        if self._background is not None and self.codec is not None:
            self._background.frames(self.codec)

    def send_dtmf(self, digits: str, duration_ms: int = 100, gap_ms: int = 60) -> None:
        """Queue RFC 4733 digits in this stream's SSRC and sequence space (baresip resets
        its jitter buffer on an SSRC change, docs/peers.md 3). Audio pauses meanwhile."""
        if self._send_dtmf_pt is None:
            raise ValueError("the far end did not negotiate telephone-event")
        for d in digits:
            # seq and timestamp are stamped when each packet is sent (see tick).
            self._dtmf_out.extend(
                dtmf_packets(
                    d,
                    pt=self._send_dtmf_pt,
                    ssrc=self._ssrc,
                    seq=0,
                    timestamp=0,
                    duration_ms=duration_ms,
                )
            )
            self._dtmf_out.extend([None] * max(1, gap_ms // 20))  # inter-digit audio

    def relay(self, pkt: RtpPacket, source: MediaSession, dtmf: bool) -> None:
        """Send a packet another leg received, in this stream's SSRC/seq space (RFC 3550 §7:
        a translator keeps each side's own sequence), transcoding G.711 when the codecs differ.
        Timestamps keep the source's spacing (one offset per source SSRC), so RFC 4733 events
        keep their shared start timestamp."""
        if self.codec is None or not self._sending:
            return
        if dtmf:
            if self._send_dtmf_pt is None:
                return  # the far end did not negotiate telephone-event: drop, never garble
            pt, payload = self._send_dtmf_pt, pkt.payload
        else:
            pt, payload = self._pt, pkt.payload
            if source.codec != self.codec and source.codec is not None:
                payload = ENCODERS[self.codec](DECODERS[source.codec](payload))
        offset = self._relay_offsets.get(pkt.ssrc)
        if offset is None:
            offset = self._relay_offsets[pkt.ssrc] = (self._ts - pkt.timestamp) & 0xFFFFFFFF
        ts = (pkt.timestamp + offset) & 0xFFFFFFFF
        self._send(rtp_header(pt, self._seq, ts, self._ssrc, pkt.marker) + payload)
        if not dtmf:
            self._ts = (ts + len(payload)) & 0xFFFFFFFF

    def tick(self) -> None:
        """Send this 20 ms interval's packet (called by the Pacer)."""
        if self.codec is None or self.relaying:
            return
        # With no address yet (c=0.0.0.0, nothing received to latch onto) or a
        # recvonly/inactive direction, audio still advances in real time unsent, so
        # play() durations and timestamps stay true; _send drops the packet.
        marker = False
        if self._dtmf_out:
            pkt = self._dtmf_out.popleft()
            if pkt is not None:
                if pkt.marker:
                    self._dtmf_start = self._ts  # RFC 4733 §2.5.1.2: the event's start time
                if self._sending:
                    header = rtp_header(
                        pkt.payload_type, self._seq, self._dtmf_start, self._ssrc, pkt.marker
                    )
                    self._send(header + pkt.payload)
                self._ts = (self._ts + FRAME) & 0xFFFFFFFF
                self._marker = True
                return
            payload = self._silence
        elif self._plays:
            payload = self._next_frame(self._plays[0])
            if self._plays[0].pos >= len(self._plays[0].encoded):
                item = self._plays.popleft()
                if item.done is not None and not item.done.done():
                    item.done.set_result(None)
            marker, self._marker = self._marker, False
        elif self._background is not None:
            bg = self._background
            payload = self._next_frame(bg)
            if bg.pos >= len(bg.encoded):
                bg.pos = 0
            marker, self._marker = self._marker, False
        else:
            payload = self._silence
            self._marker = True
        if self._sending:
            marker = marker or self.sent_packets == 0  # the stream's first packet
            self._send(rtp_header(self._pt, self._seq, self._ts, self._ssrc, marker) + payload)
        self._ts = (self._ts + FRAME) & 0xFFFFFFFF
        if self._dtmf_pending:
            self._poll_dtmf()

    @property
    def _sending(self) -> bool:
        return self.remote is not None and self._direction in ("sendrecv", "sendonly")

    def _next_frame(self, item: _Audio) -> bytes:
        assert self.codec is not None
        data = item.frames(self.codec)
        chunk = data[item.pos : item.pos + FRAME]
        item.pos += FRAME
        if len(chunk) < FRAME:
            chunk += self._silence[: FRAME - len(chunk)]
        return chunk

    def _send(self, packet: bytes) -> None:
        assert self.remote is not None
        self._transport.sendto(packet, self.remote)
        self._seq = (self._seq + 1) & 0xFFFF
        self.sent_packets += 1

    # -- receiving -----------------------------------------------------------------

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            pkt = parse_rtp(data)
        except RtpParseError:
            self.invalid_packets += 1
            return
        self.received_packets += 1
        pt = pkt.payload_type
        if pt == self._pt and self.codec is not None:
            self._latch(addr)
            self._audio_in(pkt)
            if self.forward is not None:
                self.forward(self, pkt, False)
        elif pt == self._dtmf_pt:
            # No latching on DTMF: sipp may send it from another port (even 0), docs/peers.md 2.
            for digit in self._dtmf_rx.feed(pkt, time.monotonic()):
                self.digits.put_nowait(digit)
            self._dtmf_pending = True
            if self.forward is not None:
                self.forward(self, pkt, True)
        else:
            self.ignored_packets += 1

    def _latch(self, addr: tuple[str, int]) -> None:
        if not self._latched and addr[1] != 0:
            self._latched = True
            if self.remote != addr[:2]:
                log.debug("RTP on port %d latched to %s:%d", self.local_port, *addr[:2])
            self.remote = (addr[0], addr[1])

    def _poll_dtmf(self) -> None:
        # Digits whose end packets were all lost: reported after a quiet second.
        for digit in self._dtmf_rx.poll(time.monotonic()):
            self.digits.put_nowait(digit)
        self._dtmf_pending = self._dtmf_rx.pending

    def _audio_in(self, pkt: RtpPacket) -> None:
        assert self.codec is not None
        rec = self._recording
        if rec is None:
            return  # voice activity only matters while recording (record silence=S)
        if mean_square(self.codec, pkt.payload) > VOICE_RMS * VOICE_RMS:
            self._last_voice = time.monotonic()
        expected = self._rec_next_ts.get(pkt.ssrc)
        if expected is not None:
            gap = (pkt.timestamp - expected) & 0xFFFFFFFF
            if 0 < gap <= _MAX_GAP:  # lost packets or a DTMF pause: keep the timeline
                rec += bytes(2 * gap)
            elif gap > 0x80000000:
                return  # late or duplicate packet: already covered
        rec += DECODERS[self.codec](pkt.payload)
        self._rec_next_ts[pkt.ssrc] = (pkt.timestamp + len(pkt.payload)) & 0xFFFFFFFF

    # -- digits, recording, voice activity --------------------------------------

    def flush_digits(self) -> None:
        """Forget digits received so far (e.g. before a gather's prompt)."""
        while not self.digits.empty():
            self.digits.get_nowait()

    def start_recording(self, path: Path) -> None:
        """Record the caller's decoded audio until stop_recording()."""
        self._recording = bytearray()
        self._rec_path = Path(path)
        self._rec_next_ts.clear()
        self._last_voice = time.monotonic()

    async def stop_recording(self) -> float:
        """Stop, write the 8 kHz s16 WAV, return the seconds recorded (0.0 if not recording)."""
        rec, path = self._recording, self._rec_path
        self._recording = self._rec_path = None
        if rec is None or path is None:
            return 0.0
        await asyncio.to_thread(write_wav, path, bytes(rec))
        return len(rec) / 16000

    @property
    def recording(self) -> bool:
        """A recording is in progress."""
        return self._recording is not None

    def seconds_since_voice(self) -> float:
        """Seconds since a received frame's RMS exceeded VOICE_RMS while recording (or since
        recording started, or the session opened): measured only while recording."""
        return time.monotonic() - self._last_voice

    async def close(self) -> None:
        """Stop sending, save an unfinished recording, release the port."""
        if self._closed:
            return
        self._closed = True
        self._pacer.unregister(self)
        try:
            if self._recording is not None:
                await self.stop_recording()
        finally:
            for item in self._plays:
                if item.done is not None and not item.done.done():
                    item.done.set_exception(MediaClosedError("media session closed"))
            self._plays.clear()
            self._transport.close()
            self._allocator.release(self.local_port)
        await asyncio.sleep(0)  # the transport closes its socket on the next loop pass
