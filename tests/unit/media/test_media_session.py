"""Two MediaSessions on 127.0.0.1: audio, DTMF, recording, latching, odd peers."""

from __future__ import annotations

import asyncio
import math
import socket
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from pbxcore.media.pacer import Pacer
from pbxcore.media.ports import PortAllocator
from pbxcore.media.session import MediaClosedError, MediaSession
from pbxcore.media.wav import read_wav
from pbxcore.rtp.dtmf import DtmfEvent, dtmf_packets
from pbxcore.rtp.g711 import ulaw_decode, ulaw_encode
from pbxcore.rtp.packet import RtpPacket, parse_rtp
from pbxcore.rtp.tones import silence, tone
from pbxcore.sip.sdp import AudioAnswer

HOST = "127.0.0.1"


def rms(pcm: bytes) -> float:
    s = array("h", pcm)
    return math.sqrt(sum(x * x for x in s) / len(s)) if s else 0.0


def free_range(size: int = 200) -> tuple[int, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    low = min(port, 65535 - size)
    return low, low + size


def answer(
    port: int,
    *,
    codec: str = "PCMU",
    pt: int = 0,
    dtmf: int | None = 101,
    host: str = HOST,
    hold: bool = False,
) -> AudioAnswer:
    return AudioAnswer(codec, pt, dtmf, host, port, "sendrecv", hold=hold)


class Sink(asyncio.DatagramProtocol):
    """A plain UDP socket standing in for a phone."""

    def __init__(self) -> None:
        self.packets: list[tuple[RtpPacket, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((parse_rtp(data), addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, pkt: RtpPacket, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(pkt.to_bytes(), (HOST, port))


@pytest.fixture
async def env() -> AsyncIterator[tuple[PortAllocator, Pacer]]:
    allocator = PortAllocator(*free_range())
    pacer = Pacer()
    await pacer.start()
    yield allocator, pacer
    await pacer.stop()


_open_sinks: list[Sink] = []


async def open_sink() -> Sink:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(Sink, local_addr=(HOST, 0))
    _open_sinks.append(proto)
    return proto


@pytest.fixture(autouse=True)
async def close_sinks() -> AsyncIterator[None]:
    yield
    while _open_sinks:
        t = _open_sinks.pop().transport
        if t is not None:
            t.close()
    await asyncio.sleep(0)  # let the transports finish closing their sockets


async def test_tone_recorded_on_the_other_side(
    env: tuple[PortAllocator, Pacer], tmp_path: Path
) -> None:
    allocator, pacer = env
    a = await MediaSession.open(HOST, allocator, pacer)
    b = await MediaSession.open(HOST, allocator, pacer)
    try:
        a.configure(answer(b.local_port))
        b.configure(answer(a.local_port))
        loop = asyncio.get_running_loop()
        b.start_recording(tmp_path / "rec.wav")
        rec_start = loop.time()
        await asyncio.sleep(0.2)
        assert b.seconds_since_voice() >= 0.15  # silence so far
        t0 = loop.time()
        await asyncio.wait_for(a.play(tone(1000, 1000, amplitude=8000)), 3)
        t1 = loop.time()
        assert 0.95 <= t1 - t0 < 1.5  # returns once fully sent, paced in real time
        await asyncio.sleep(0.2)
        assert b.seconds_since_voice() == pytest.approx(loop.time() - t1, abs=0.1)
        seconds = await b.stop_recording()
        assert seconds == pytest.approx(loop.time() - rec_start, abs=0.1)
        pcm = read_wav(tmp_path / "rec.wav")
        assert len(pcm) == round(seconds * 16000)
        frames = [pcm[i : i + 320] for i in range(0, len(pcm), 320)]
        loud = [f for f in frames if rms(f) > 1000]
        assert len(loud) == pytest.approx(50, abs=2)  # 1 s of tone, 20 ms frames
        assert rms(b"".join(loud)) == pytest.approx(8000 / math.sqrt(2), rel=0.05)
        assert b.received_packets > 60 and a.sent_packets > 60
        assert await b.stop_recording() == 0.0
    finally:
        await a.close()
        await b.close()
    assert allocator.in_use == 0


async def test_dtmf_between_sessions(env: tuple[PortAllocator, Pacer]) -> None:
    allocator, pacer = env
    a = await MediaSession.open(HOST, allocator, pacer)
    b = await MediaSession.open(HOST, allocator, pacer)
    try:
        a.configure(answer(b.local_port, dtmf=120))
        b.configure(answer(a.local_port, dtmf=120))
        a.send_dtmf("12#", duration_ms=60, gap_ms=40)
        got = [await asyncio.wait_for(b.digits.get(), 2) for _ in range(3)]
        assert got == ["1", "2", "#"]
        await asyncio.sleep(0.2)
        assert b.digits.empty()
        b.digits.put_nowait("9")
        b.flush_digits()
        assert b.digits.empty()
    finally:
        await a.close()
        await b.close()


async def test_outgoing_stream_shape(env: tuple[PortAllocator, Pacer]) -> None:
    allocator, pacer = env
    sink = await open_sink()
    s = await MediaSession.open(HOST, allocator, pacer)
    try:
        s.configure(answer(sink.port, codec="PCMA", pt=8, dtmf=96))
        await asyncio.sleep(0.1)
        await s.play(tone(440, 100))
        s.send_dtmf("5", duration_ms=40, gap_ms=20)
        await asyncio.sleep(0.25)
    finally:
        await s.close()
    pkts = [p for p, _ in sink.packets]
    assert len({p.ssrc for p in pkts}) == 1
    seqs = [p.sequence for p in pkts]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    audio = [p for p in pkts if p.payload_type == 8]
    assert all(len(p.payload) == 160 for p in audio)
    ts = [p.timestamp for p in audio]
    assert all(
        (b - a) & 0xFFFFFFFF in (160, 320, 480, 640, 800) for a, b in zip(ts, ts[1:], strict=False)
    )
    assert pkts[0].marker  # first packet of the stream
    first_tone = next(i for i, p in enumerate(audio) if p.payload != b"\xd5" * 160)
    assert audio[first_tone].marker  # first audio after silence (RFC 3551 §4.1)
    assert sum(p.marker for p in audio) == 2
    dtmf = [p for p in pkts if p.payload_type == 96]
    assert len(dtmf) == 4 and dtmf[0].marker and len({p.timestamp for p in dtmf}) == 1
    assert [DtmfEvent.parse(p.payload).end for p in dtmf] == [False, True, True, True]


async def test_peer_quirks_latching_second_ssrc_unknown_pts(
    env: tuple[PortAllocator, Pacer],
) -> None:
    allocator, pacer = env
    phone = await open_sink()  # its audio port, like pyVoIP behind c=0.0.0.0
    sipp_dtmf = await open_sink()  # another port and SSRC, like sipp's play_dtmf
    s = await MediaSession.open(HOST, allocator, pacer)
    try:
        s.configure(answer(9, dtmf=96, host="0.0.0.0", hold=True))
        await asyncio.sleep(0.1)
        assert s.sent_packets == 0  # nowhere to send yet
        # linphone's PT 1 and sipp's PT 97 warm-up: ignored, and no latching on them.
        phone.send(RtpPacket(1, 1, 0, 77, b"\x00" * 4), s.local_port)
        for i in range(20):
            sipp_dtmf.send(RtpPacket(97, i, 0, 0x01020305, b"\x00" * 4), s.local_port)
        await asyncio.sleep(0.1)
        assert s.sent_packets == 0 and s.ignored_packets == 21
        phone.send(RtpPacket(0, 2, 160, 77, ulaw_encode(silence(20))), s.local_port)
        await asyncio.sleep(0.1)
        assert s.remote == (HOST, phone.port)
        assert len(phone.packets) >= 3 and sipp_dtmf.packets == []
        for p in dtmf_packets("7", pt=96, ssrc=0x01020305, seq=100, timestamp=1):
            sipp_dtmf.send(p, s.local_port)
        assert await asyncio.wait_for(s.digits.get(), 1) == "7"
        assert s.invalid_packets == 0
        phone.transport.sendto(b"\x01\x02", (HOST, s.local_port))  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
        assert s.invalid_packets == 1
    finally:
        await s.close()


async def test_background_loops_and_play_interrupts(env: tuple[PortAllocator, Pacer]) -> None:
    allocator, pacer = env
    sink = await open_sink()
    s = await MediaSession.open(HOST, allocator, pacer)
    try:
        s.configure(answer(sink.port))
        ring = tone(425, 60, amplitude=6000)  # 3 frames, looped
        s.set_background(ring)
        await asyncio.sleep(0.3)
        n_start = len(sink.packets)
        task = asyncio.create_task(s.play(tone(1000, 5000, amplitude=12000)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        n_cancel = len(sink.packets)
        await asyncio.sleep(0.2)
        s.set_background(None)
        await asyncio.sleep(0.2)
    finally:
        await s.close()
    levels = [rms(ulaw_decode(p.payload)) for p, _ in sink.packets]
    assert sum(1 for x in levels if 3000 < x < 5000) >= 10  # ringback frames
    loud = sum(1 for x in levels if x > 7000)
    assert 5 <= loud and abs(loud - (n_cancel - n_start)) <= 2  # only until the cancel
    after = levels[n_cancel + 1 : n_cancel + 8]
    assert after and all(x < 5000 for x in after)  # back to ringback at once
    assert levels[-3:] == [0.0, 0.0, 0.0]  # then silence, still sent


async def test_play_before_configure_and_after_close(env: tuple[PortAllocator, Pacer]) -> None:
    allocator, pacer = env
    sink = await open_sink()
    s = await MediaSession.open(HOST, allocator, pacer)
    task = asyncio.create_task(s.play(tone(1000, 100)))
    await asyncio.sleep(0.1)
    assert not task.done() and s.sent_packets == 0
    s.configure(answer(sink.port, codec="PCMA", pt=8))
    await asyncio.wait_for(task, 1)
    pending = asyncio.create_task(s.play(tone(1000, 5000)))
    await asyncio.sleep(0.05)
    await s.close()
    with pytest.raises(MediaClosedError):
        await pending
    with pytest.raises(MediaClosedError):
        await s.play(b"\x00\x00")
    await s.close()  # idempotent
    assert allocator.in_use == 0 and pacer.streams == 0


async def test_close_saves_unfinished_recording(
    env: tuple[PortAllocator, Pacer], tmp_path: Path
) -> None:
    allocator, pacer = env
    s = await MediaSession.open(HOST, allocator, pacer)
    s.configure(answer(9))
    s.start_recording(tmp_path / "vm.wav")
    assert s.recording
    await s.close()
    assert read_wav(tmp_path / "vm.wav") == b""


async def test_send_dtmf_needs_negotiated_pt(env: tuple[PortAllocator, Pacer]) -> None:
    allocator, pacer = env
    s = await MediaSession.open(HOST, allocator, pacer)
    try:
        s.configure(answer(9, dtmf=None))
        with pytest.raises(ValueError, match="telephone-event"):
            s.send_dtmf("1")
    finally:
        await s.close()


def test_encode_cache_shares_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import OrderedDict

    from pbxcore.media import session as mod

    monkeypatch.setattr(mod, "_cache", OrderedDict())
    monkeypatch.setattr(mod, "_cache_size", 0)
    pcm = tone(300, 100)
    first = mod.encode_cached("PCMU", pcm)
    assert first == ulaw_encode(pcm)
    assert mod.encode_cached("PCMU", bytes(pcm)) is first  # equal content, same entry
    assert mod.encode_cached("PCMA", pcm) != first
    monkeypatch.setattr(mod, "_CACHE_BYTES", 40000)
    for f in range(5):
        mod.encode_cached("PCMU", tone(500 + f, 500))  # 8000 + 4000 bytes each
    assert mod._cache_size <= 40000 and len(mod._cache) == 3
    assert sum(len(k[1]) + len(v) for k, v in mod._cache.items()) == mod._cache_size


async def test_play_completes_on_hold_without_sending(env: tuple[PortAllocator, Pacer]) -> None:
    allocator, pacer = env
    s = await MediaSession.open(HOST, allocator, pacer)
    try:
        s.configure(answer(9, host="0.0.0.0", hold=True))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(s.play(tone(400, 200)), 2)
        assert 0.18 <= loop.time() - t0 < 0.6  # real time, not instant, not stuck
        assert s.sent_packets == 0
        await s.play(b"")
        with pytest.raises(ValueError, match="even"):
            await s.play(b"\x00")
    finally:
        await s.close()


async def test_dtmf_with_lost_end_packets_reported_after_quiet(
    env: tuple[PortAllocator, Pacer],
) -> None:
    allocator, pacer = env
    phone = await open_sink()
    s = await MediaSession.open(HOST, allocator, pacer)
    try:
        s.configure(answer(phone.port, dtmf=101))
        for p in dtmf_packets("6", pt=101, ssrc=5, seq=1, timestamp=1)[:-3]:
            phone.send(p, s.local_port)
        assert await asyncio.wait_for(s.digits.get(), 2.5) == "6"
        assert s.digits.empty()
    finally:
        await s.close()
