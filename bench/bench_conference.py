"""Conference mixing cost: CPU per party-second of one room, by room size and talkers.

usage: python bench/bench_conference.py [SECONDS=5]

For each room size N (5, 10, 20, 50, 100) and each number of talkers (all N, or 3 — the
usual meeting), builds a real `Room` of N real `MediaSession`s (PCMU, sending to a loopback
socket nobody reads, so the kernel drops the packets) and runs SECONDS of 20 ms ticks back to
back: before each tick every talker's inbox gets one received frame, as the RTP socket would
put it there; the tick mixes (pbxcore.rtp.mix), encodes and sends N packets.  Prints the
process CPU per tick, per party-second (CPU seconds to mix one party for one second of audio),
and the share of one core a room of that size needs in real time.  The switch's RTP receive
path (parsing, about as costly as one send) is not in these figures.  Asserts nothing.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pbxcore.call.conference import Member, Room  # noqa: E402
from pbxcore.media.pacer import Pacer  # noqa: E402
from pbxcore.media.ports import PortAllocator  # noqa: E402
from pbxcore.media.session import MediaSession  # noqa: E402
from pbxcore.rtp.g711 import ulaw_encode  # noqa: E402
from pbxcore.rtp.tones import tone  # noqa: E402
from pbxcore.sip.sdp import AudioAnswer  # noqa: E402

HOST = "127.0.0.1"
SIZES = (5, 10, 20, 50, 100)


async def measure(n: int, talkers: int, seconds: float, sink_port: int) -> tuple[float, int]:
    pacer = Pacer()  # never started: the bench ticks the room itself, back to back
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        low = probe.getsockname()[1] // 2 * 2
    allocator = PortAllocator(low, low + 4 * n + 8)
    sessions = [await MediaSession.open(HOST, allocator, pacer) for _ in range(n)]
    room = Room("bench", pacer, lambda room: None, chimes=False)
    try:
        for i, s in enumerate(sessions):
            s.configure(AudioAnswer("PCMU", 0, 101, HOST, sink_port, "sendrecv"))
            room.add(Member(room.new_number(), f"c{i}", str(1000 + i), s))
        frames = [ulaw_encode(tone(300 + 37 * i, 20, amplitude=3000)) for i in range(n)]
        speaking = room.members[:talkers]
        ticks = int(seconds / 0.020)
        start = time.process_time()
        for _ in range(ticks):
            for m, f in zip(speaking, frames, strict=False):
                m.inbox.append(f)
            room.tick()
        cpu = time.process_time() - start
        return cpu, ticks
    finally:
        for s in sessions:
            await s.close()


async def main(seconds: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((HOST, 0))
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # drop, do not queue
        port = sink.getsockname()[1]
        print(f"conference mixing, {seconds:g} s of audio per row, PCMU")
        print(f"{'parties':>7} {'talkers':>7} {'us/tick':>9} {'us/party-s':>11} "
              f"{'core% (room)':>13}")
        for n in SIZES:
            for talkers in sorted({n, min(3, n)}, reverse=True):
                cpu, ticks = await measure(n, talkers, seconds, port)
                per_tick = cpu / ticks
                party_seconds = n * ticks * 0.020
                print(f"{n:>7} {talkers:>7} {per_tick * 1e6:>9.0f} "
                      f"{cpu / party_seconds * 1e6:>11.0f} {per_tick / 0.020 * 100:>12.1f}%")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0))
