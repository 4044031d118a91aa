"""The shared 20 ms clock: absolute deadlines, bounded catch-up, one bad stream isolated."""

from __future__ import annotations

import asyncio
import time

import pytest

from pbxcore.media.pacer import Pacer


class Counter:
    def __init__(self) -> None:
        self.times: list[float] = []

    def tick(self) -> None:
        self.times.append(time.monotonic())


class Broken:
    calls = 0

    def tick(self) -> None:
        self.calls += 1
        raise RuntimeError("boom")


async def test_ticks_every_interval_without_drift() -> None:
    pacer = Pacer()
    streams = [Counter() for _ in range(3)]
    for s in streams:
        pacer.register(s)
    await pacer.start()
    await pacer.start()  # idempotent
    start = time.monotonic()
    await asyncio.sleep(1.0)
    await pacer.stop()
    elapsed = time.monotonic() - start
    for s in streams:
        # Absolute deadlines: the count tracks wall time, sleep overshoot does not add up.
        assert abs(len(s.times) - elapsed / 0.020) <= 3
    gaps = [b - a for a, b in zip(streams[0].times, streams[0].times[1:], strict=False)]
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(0.020, abs=0.004)
    stats = pacer.stats()
    assert stats.ticks == len(streams[0].times)
    assert stats.lateness_p50_ms < 10


async def test_catches_up_after_a_stall_then_skips_beyond_bound() -> None:
    pacer = Pacer(max_catchup=5)
    c = Counter()
    pacer.register(c)
    await pacer.start()
    await asyncio.sleep(0.1)
    time.sleep(0.085)  # a stall of ~4 intervals: caught up back to back
    await asyncio.sleep(0.1)
    caught = pacer.stats().caught_up
    assert caught >= 2
    assert pacer.stats().skipped == 0
    time.sleep(0.3)  # ~15 intervals: more than max_catchup, the rest is skipped
    await asyncio.sleep(0.1)
    await pacer.stop()
    stats = pacer.stats()
    assert stats.skipped >= 5
    assert stats.caught_up >= caught + 4


async def test_broken_stream_is_unregistered_others_continue() -> None:
    pacer = Pacer()
    good, bad = Counter(), Broken()
    pacer.register(bad)
    pacer.register(good)
    await pacer.start()
    await asyncio.sleep(0.2)
    await pacer.stop()
    assert bad.calls == 1
    assert pacer.streams == 1
    assert len(good.times) >= 5


async def test_unregister_stops_ticks() -> None:
    pacer = Pacer()
    c = Counter()
    pacer.register(c)
    pacer.unregister(c)
    pacer.unregister(c)  # harmless
    await pacer.start()
    await asyncio.sleep(0.1)
    await pacer.stop()
    await pacer.stop()
    assert c.times == []


class Named:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def tick(self) -> None:
        self.log.append(self.name)


async def test_streams_are_dealt_into_phase_groups_each_ticked_once_per_interval() -> None:
    # The loop is held for one group at a time (bench/README.md, "Media"); every stream still
    # gets one tick per interval, in a fixed order, whatever the loop's lateness.
    log: list[str] = []
    pacer = Pacer(slices=4)
    streams = [Named(c, log) for c in "abcdefgh"]
    for s in streams:
        pacer.register(s)
    pacer.register(streams[0])  # registering twice changes nothing
    assert pacer.streams == 8
    await pacer.start()
    await asyncio.sleep(0.3)
    await pacer.stop()
    # Dealt to the emptiest group in turn: groups (a, e), (b, f), (c, g), (d, h).
    period = ["a", "e", "b", "f", "c", "g", "d", "h"]
    rounds = len(log) // 8
    assert rounds >= 5
    assert log[: rounds * 8] == period * rounds
    assert pacer.stats().ticks == rounds + (1 if len(log) % 8 else 0)
    # A freed place is taken by the next stream: group 1 again holds two.
    pacer.unregister(streams[1])
    late = Named("z", log)
    pacer.register(late)
    log.clear()
    await pacer.start()
    await asyncio.sleep(0.2)
    await pacer.stop()
    start = log.index("a")
    cycle = log[start : start + 8]
    assert cycle == ["a", "e", "f", "z", "c", "g", "d", "h"]


def test_slices_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slices"):
        Pacer(slices=0)
