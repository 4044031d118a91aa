"""Mutation fuzzing of the message parser and the TCP framer: they raise only their own errors.

Issue 9 item 2 ("keep it proven"): 10**6 in-process mutations found 817 messages on which
`parse_message` raised Python's int-conversion ValueError instead of `SipSyntaxError`.  These runs
hold the parser and the framer to their contracts on every mutation:

* `parse_message` (datagram and stream mode) raises only `SipSyntaxError`; what it accepts can be
  inspected the way the switch does (CSeq, Via list, From/To, Max-Forwards, SDP body), serialized,
  and fed to a fresh `TransactionLayer` without any other exception.
* `StreamFramer` raises only `FramingError`, and cuts the same frames whether the stream comes in
  one piece, in random chunks or one byte at a time.

Seed corpus: `captures/` (peer captures and the 49 RFC 4475 torture messages).  Counts: 10**5 in
total per CI run (80% parser, 20% framer).  Environment:

* `PBX_FUZZ_SEED=N` replays a run exactly (every run prints its seed; a failure names it too);
* `PBX_FUZZ_COUNT=N` sets the total, e.g. `PBX_FUZZ_COUNT=1000000` for a long manual or bench run.

The figures (count, seed, seconds) are printed, never asserted.
"""

from __future__ import annotations

import time

import pytest

from pbxcore.sip.address import parse_name_addr, request_vias
from pbxcore.sip.framing import FramingError, StreamFramer
from pbxcore.sip.message import Request, SipSyntaxError, parse_message
from pbxcore.sip.peer import Peer
from pbxcore.sip.sdp import SdpError, negotiate, parse_sdp
from pbxcore.sip.transaction import TransactionLayer
from tests.unit.sip.mutation import Mutator, corpus, seed_from_env, total_from_env

PEER = Peer("udp", "192.0.2.9", 5060)


def _report(capsys: pytest.CaptureFixture[str], what: str, count: int, seed: int,
            started: float) -> None:
    with capsys.disabled():
        print(f"\n[fuzz] {what}: {count} mutations, seed {seed} (PBX_FUZZ_SEED), "
              f"{time.monotonic() - started:.1f} s")


def _inspect(data: bytes, stream: bool, layer: TransactionLayer, now: float) -> None:
    """Parse, then use the result as the switch would; only SipSyntaxError may come out.

    One `layer` for a whole run, its timers stepped by `now`: mutated retransmissions, ACKs and
    CANCELs then meet transactions of earlier messages, as on a real socket."""
    try:
        msg = parse_message(data, stream=stream)
    except SipSyntaxError:
        return
    try:
        msg.cseq  # noqa: B018 - a property that parses
        if isinstance(msg, Request):
            request_vias(msg.headers)
            parse_name_addr(msg.headers.get("From") or "")
            parse_name_addr(msg.headers.get("To") or "")
            assert msg.max_forwards is None or 0 <= msg.max_forwards <= 255
            layer.receive_request(msg, PEER, now)
        else:
            layer.receive_response(msg, PEER, now)
        parse_message(msg.to_bytes(), stream=stream)
    except SipSyntaxError:
        pass
    if msg.body:
        try:
            offer = parse_sdp(msg.body)
        except SdpError:
            return
        negotiate(offer)


def test_parse_message_raises_only_sip_syntax_error(capsys: pytest.CaptureFixture[str]) -> None:
    seed, count = seed_from_env(), total_from_env() * 8 // 10
    mutator = Mutator(seed, corpus())
    layer = TransactionLayer()
    started = time.monotonic()
    for i in range(count):
        data = mutator.mutate(mutator.pick())
        stream = bool(i & 1)
        now = i * 0.01
        try:
            _inspect(data, stream, layer, now)
            layer.handle_timer(now)
        except Exception as exc:
            raise AssertionError(f"seed {seed}, mutation {i} (stream={stream}): "
                                 f"{type(exc).__name__}: {exc!s:.200} on {data[:400]!r}") from exc
    _report(capsys, "parse_message", count, seed, started)


def _frame_all(chunks: list[bytes]) -> tuple[list[bytes], bool]:
    """Every frame the framer cuts from `chunks`, and whether it stopped on a FramingError."""
    framer = StreamFramer(max_header_bytes=4096, max_body_bytes=65536)
    frames: list[bytes] = []
    for chunk in chunks:
        try:
            frames += framer.feed(chunk)
        except FramingError as exc:
            return frames + exc.frames, True
    return frames, False


def test_framer_raises_only_framing_error_and_ignores_chunking(
        capsys: pytest.CaptureFixture[str]) -> None:
    seed, count = seed_from_env(), total_from_env() * 2 // 10
    mutator = Mutator(seed ^ 0x5EED, corpus())  # not the parser run's sequence
    layer = TransactionLayer()
    started = time.monotonic()
    for i in range(count):
        # A stream: a few messages back to back, keep-alives between, some of them mutated.
        parts = []
        for _ in range(mutator.rng.randint(1, 3)):
            msg = mutator.pick()
            parts.append(mutator.mutate(msg) if mutator.rng.random() < 0.7 else msg)
            if mutator.rng.random() < 0.2:
                parts.append(b"\r\n\r\n")
        stream = b"".join(parts)
        try:
            whole = _frame_all([stream])
            chunked = _frame_all(mutator.chunks(stream))
            assert chunked == whole, "chunked feeding cut other frames than one feed"
            for frame in whole[0]:
                if frame != b"\r\n\r\n":
                    _inspect(frame, True, layer, i * 0.01)
            layer.handle_timer(i * 0.01)
        except Exception as exc:
            raise AssertionError(f"seed {seed} (framer), stream {i}: "
                                 f"{type(exc).__name__}: {exc!s:.200} on {stream[:400]!r}"
                                 ) from exc
    _report(capsys, "StreamFramer", count, seed, started)
