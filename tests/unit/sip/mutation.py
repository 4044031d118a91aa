"""A small seeded mutation engine for the parser and framer fuzz runs (no dependency: `random`).

Inputs come from the seed corpus (`captures/`, RFC 4475 torture messages included) and are
changed by byte-level mutations plus SIP-aware ones: numbers replaced by huge, non-ASCII or signed
ones (issue 9 item 2: 4,301+ digit integers; item 1: '²'), separators and line ends inserted,
lines duplicated, dropped or swapped between messages.  Everything is driven by one
`random.Random(seed)`, so a failure is replayed exactly with the same seed (PBX_FUZZ_SEED).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

CAPTURES = Path(__file__).parent / "captures"

#: Fuzz totals.  CI runs the default; a bench or manual run sets PBX_FUZZ_COUNT (e.g. 1000000).
DEFAULT_TOTAL = 100_000

_NUMBER = re.compile(rb"[0-9]+")
TOKENS = [
    b"9" * 4301, b"9" * 20, b"0" * 5000 + b"1", "²".encode(), "٣".encode(), "１".encode(),
    b"+5", b"-1", b"1_0", b"0x10", b"\xff", b"\xfe\xff", b"\x00", b"%00", b"%FF", b"\r",
    b"\n", b"\r\n", b"\r\n\r\n", b"\r\n ", b" ", b"\t", b":", b";", b",", b"=", b"<", b">",
    b'"', b"\\", b"@", b"[", b"]", b"[::1]", b"/", b"z9hG4bK", b";branch=", b";tag=",
    b"Content-Length: ", b"l: ", b"CSeq: ", b"Max-Forwards: ", b"Via: SIP/2.0/UDP ",
    b"Expires: ", b";expires=", b";rport=", b"sip:", b"sips:", b"tel:", b"SIP/2.0 ",
    b"m=audio ", b"a=fmtp:", b"a=rtpmap:", b"RTP/AVP ", b"INVITE", b"ACK",
]


def corpus() -> list[bytes]:
    """Every captured message: the peers' and RFC 4475's (sorted, so a seed is reproducible)."""
    files = sorted(CAPTURES.glob("*.sip")) + sorted((CAPTURES / "rfc4475").glob("*.sip"))
    return [f.read_bytes() for f in files]


def seed_from_env() -> int:
    """PBX_FUZZ_SEED if set (to replay a failure), else a fresh random seed."""
    text = os.environ.get("PBX_FUZZ_SEED")
    return int(text) if text else random.SystemRandom().randrange(2**32)


def total_from_env() -> int:
    text = os.environ.get("PBX_FUZZ_COUNT")
    return int(text) if text else DEFAULT_TOTAL


class Mutator:
    """Seeded mutations of corpus messages."""

    def __init__(self, seed: int, seeds: list[bytes]) -> None:
        self.rng = random.Random(seed)
        self.seeds = seeds

    def pick(self) -> bytes:
        return self.rng.choice(self.seeds)

    def mutate(self, data: bytes, rounds: int | None = None) -> bytes:
        rng = self.rng
        out = bytearray(data)
        for _ in range(rounds if rounds is not None else rng.randint(1, 4)):
            op = rng.randrange(9)
            pos = rng.randint(0, len(out))
            if op == 0 and out:  # flip one byte
                out[min(pos, len(out) - 1)] = rng.randrange(256)
            elif op == 1:  # insert an interesting token
                out[pos:pos] = rng.choice(TOKENS)
            elif op == 2 and out:  # delete a range
                del out[pos:pos + rng.randint(1, 16)]
            elif op == 3 and out:  # duplicate a range
                end = min(len(out), pos + rng.randint(1, 64))
                out[pos:pos] = out[pos:end]
            elif op == 4:  # replace a number by a hostile one
                numbers = list(_NUMBER.finditer(out))
                if numbers:
                    m = rng.choice(numbers)
                    out[m.start():m.end()] = rng.choice(TOKENS[:10])
            elif op == 5:  # splice a line of another message
                lines = self.pick().split(b"\r\n")
                out[pos:pos] = rng.choice(lines) + b"\r\n"
            elif op == 6:  # drop a whole line
                lines = bytes(out).split(b"\r\n")
                if len(lines) > 1:
                    del lines[rng.randrange(len(lines))]
                    out = bytearray(b"\r\n".join(lines))
            elif op == 7:  # LF-only or mixed line ends
                out = bytearray(bytes(out).replace(b"\r\n", b"\n", rng.randint(1, 8)))
            else:  # random bytes
                out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        return bytes(out)

    def chunks(self, data: bytes) -> list[bytes]:
        """`data` cut at random places (sometimes one byte at a time)."""
        if len(data) < 2:
            return [data]
        if self.rng.random() < 0.05 and len(data) < 2000:
            return [data[i:i + 1] for i in range(len(data))]
        cuts = sorted(self.rng.sample(range(1, len(data)), min(len(data) - 1,
                                                               self.rng.randint(0, 6))))
        bounds = [0, *cuts, len(data)]
        return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
