"""Bridge relay on 127.0.0.1: plain packets and packets with a CSRC list give one stream.

Two phones (plain UDP sockets) each talk to their own MediaSession; a Bridge relays between
the sessions. What the far phone receives must be one RTP stream in the relaying session's
SSRC and sequence space (RFC 3550 §7, a translator), timestamps keeping the source's spacing,
the marker bit passed through, the CSRC list dropped, G.711 transcoded when the codecs differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pbxcore.media.bridge import Bridge
from pbxcore.media.pacer import Pacer
from pbxcore.media.ports import PortAllocator
from pbxcore.media.session import MediaSession
from pbxcore.rtp.g711 import alaw_encode, ulaw_decode, ulaw_encode
from pbxcore.rtp.packet import RtpPacket
from pbxcore.rtp.tones import tone

from .test_media_session import HOST, answer, close_sinks, free_range, open_sink

__all__ = ["close_sinks"]  # the autouse fixture that closes the phones' sockets


@pytest.fixture
async def env() -> AsyncIterator[tuple[PortAllocator, Pacer]]:
    allocator = PortAllocator(*free_range())
    pacer = Pacer()
    await pacer.start()
    yield allocator, pacer
    await pacer.stop()


async def _wait(cond: object, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond() and loop.time() < end:  # type: ignore[operator]
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("far_codec", ["PCMU", "PCMA"])
async def test_relayed_stream_keeps_seq_ts_marker_across_both_paths(
    env: tuple[PortAllocator, Pacer], far_codec: str
) -> None:
    allocator, pacer = env
    caller, callee = await open_sink(), await open_sink()
    a = await MediaSession.open(HOST, allocator, pacer)
    b = await MediaSession.open(HOST, allocator, pacer)
    try:
        a.configure(answer(caller.port))
        pt = 0 if far_codec == "PCMU" else 8
        b.configure(answer(callee.port, codec=far_codec, pt=pt))
        bridge = Bridge(a, b)
        bridge.start()
        await asyncio.sleep(0.05)
        callee.packets.clear()
        frames = [ulaw_encode(tone(400 + 50 * i, 20, amplitude=8000)) for i in range(8)]
        sent = []
        for i, payload in enumerate(frames):
            # Packets 3 and 6 carry a CSRC (a mixer upstream).
            csrc = (0x1234,) if i in (3, 6) else ()
            pkt = RtpPacket(0, 500 + i, 90_000 + 160 * i, 0xABCDEF, payload, i in (0, 5), csrc)
            sent.append(pkt)
            caller.send(pkt, a.local_port)
            await asyncio.sleep(0.005)
        await _wait(lambda: len(callee.packets) >= 8)
        got = [p for p, _ in callee.packets]
        assert len(got) == 8 and bridge.relayed == 8
        assert {p.ssrc for p in got} == {b._ssrc} and b._ssrc != 0xABCDEF
        assert all(p.csrc == () and p.payload_type == pt for p in got)
        assert [(p.sequence - got[0].sequence) & 0xFFFF for p in got] == list(range(8))
        assert [(p.timestamp - got[0].timestamp) & 0xFFFFFFFF for p in got] == [
            160 * i for i in range(8)
        ]
        assert [p.marker for p in got] == [s.marker for s in sent]
        expect = [ulaw_decode(f) for f in frames]
        if far_codec == "PCMU":
            assert [p.payload for p in got] == frames
        else:
            assert [p.payload for p in got] == [alaw_encode(x) for x in expect]
        assert a.received_packets == 8
    finally:
        await a.close()
        await b.close()


async def test_recording_while_bridged_records_and_relays(
    env: tuple[PortAllocator, Pacer], tmp_path: Path
) -> None:
    allocator, pacer = env
    caller, callee = await open_sink(), await open_sink()
    a = await MediaSession.open(HOST, allocator, pacer)
    b = await MediaSession.open(HOST, allocator, pacer)
    try:
        a.configure(answer(caller.port))
        b.configure(answer(callee.port))
        Bridge(a, b).start()
        a.start_recording(tmp_path / "a.wav")
        await asyncio.sleep(0.05)
        callee.packets.clear()
        payload = ulaw_encode(tone(1000, 20, amplitude=8000))
        for i in range(5):
            caller.send(RtpPacket(0, i, 160 * i, 7, payload), a.local_port)
            await asyncio.sleep(0.005)
        await _wait(lambda: len(callee.packets) >= 5)
        assert len(callee.packets) == 5
        assert await a.stop_recording() == pytest.approx(5 * 0.02)  # recorded and relayed
    finally:
        await a.close()
        await b.close()
