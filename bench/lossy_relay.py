"""A seeded, lossy UDP relay for the soak: loses, duplicates and reorders datagrams both ways.

    .venv/bin/python bench/lossy_relay.py --listen PORT --to PORT [--loss 0.05] [--dup 0.02]
        [--reorder 0.05] [--seed 1] [--stats FILE]

The client (SIPp) sends to 127.0.0.1:LISTEN; the relay forwards from a second socket to the
switch at 127.0.0.1:TO, so the switch sees the relay's second socket as the caller: its answers
and its in-dialog requests (BYE goes to the INVITE's source, call/leg.py) come back through the
relay too and go to the last client address seen.  Each datagram, in each direction, is dropped
with probability LOSS, otherwise sent once more (20 ms later) with probability DUP, and held
back 30-150 ms with probability REORDER, so datagrams sent after it overtake it.  One
random.Random(SEED) decides everything, in arrival order.  SIGTERM/SIGINT write the counters
as JSON to FILE (or stdout) and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class Faults:
    loss: float
    dup: float
    reorder: float
    rng: random.Random
    counts: Counter[str] = field(default_factory=Counter)


class _Side(asyncio.DatagramProtocol):
    """One socket of the relay; `peer` is the other side's socket."""

    def __init__(self, relay: Relay, name: str) -> None:
        self.relay, self.name = relay, name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.received(self.name, data, addr)


class Relay:
    def __init__(self, target: tuple[str, int], faults: Faults) -> None:
        self.target, self.faults = target, faults
        self.client: tuple[str, int] | None = None
        self.front = _Side(self, "front")  # faces the client
        self.back = _Side(self, "back")  # faces the switch
        self.loop = asyncio.get_running_loop()

    def received(self, side: str, data: bytes, addr: tuple[str, int]) -> None:
        f = self.faults
        if side == "front":
            self.client = addr
            out, dest, key = self.back, self.target, "to_switch"
        else:
            if self.client is None:
                return
            out, dest, key = self.front, self.client, "to_client"
        f.counts[key] += 1
        if f.rng.random() < f.loss:
            f.counts[key + "_lost"] += 1
            return
        delay = 0.0
        if f.rng.random() < f.reorder:
            delay = f.rng.uniform(0.03, 0.15)
            f.counts[key + "_reordered"] += 1
        self._send(out, data, dest, delay)
        if f.rng.random() < f.dup:
            f.counts[key + "_duplicated"] += 1
            self._send(out, data, dest, delay + 0.02)

    def _send(self, side: _Side, data: bytes, dest: tuple[str, int], delay: float) -> None:
        def go() -> None:
            if side.transport is not None:
                side.transport.sendto(data, dest)
        if delay:
            self.loop.call_later(delay, go)
        else:
            go()


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    faults = Faults(args.loss, args.dup, args.reorder, random.Random(args.seed))
    relay = Relay((HOST, args.to), faults)
    front, _ = await loop.create_datagram_endpoint(lambda: relay.front, local_addr=(HOST, args.listen))
    back, _ = await loop.create_datagram_endpoint(lambda: relay.back, local_addr=(HOST, 0))
    for s in (front, back):
        s.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"relay {HOST}:{args.listen} -> {HOST}:{args.to} (back socket "
          f"{back.get_extra_info('sockname')[1]}), loss {args.loss}, dup {args.dup}, "
          f"reorder {args.reorder}, seed {args.seed}", flush=True)
    await stop.wait()
    front.close()
    back.close()
    text = json.dumps(dict(sorted(faults.counts.items())))
    if args.stats:
        with open(args.stats, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", type=int, required=True)
    ap.add_argument("--loss", type=float, default=0.05)
    ap.add_argument("--dup", type=float, default=0.02)
    ap.add_argument("--reorder", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stats", default="")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
