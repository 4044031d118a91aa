"""The pure ACD model alone: decision time with many callers waiting.

usage: python bench/bench_acd_model.py [--callers 1000] [--agents 100] [--queues 10]
                                       [--events 20000] [--strategy longest-idle]

Q queues, each agent a member of two of them (tier 1 in one, tier 2 in the next, with an
overflow rule after 30 s), announcements every 20 s, callers of mixed priority.  Every agent
talks; the line holds --callers callers.  Each event ends one random call (the agent frees and
the model offers it the best caller: "offer after an agent frees", the issue's goal < 5 ms
p99), the agent answers, and a new caller joins so the line stays full; model time advances
0.05 s per event and `tick` runs at every deadline (timeouts, announcements, overflow).
Prints p50/p99/max of each input's wall time; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pbxcore.acd.model import Acd, Offer  # noqa: E402
from pbxcore.acd.spec import Member, OverflowRule, QueueSpec  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--callers", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--queues", type=int, default=10)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--strategy", default="longest-idle")
    args = ap.parse_args()
    rng = random.Random(1)
    nq, na = args.queues, args.agents
    agents = [f"{2000 + i}" for i in range(na)]
    specs = []
    for qi in range(nq):
        own = [Member(a, 1) for i, a in enumerate(agents) if i % nq == qi]
        spill = [Member(a, 2) for i, a in enumerate(agents) if i % nq == (qi + 1) % nq]
        specs.append(QueueSpec(f"q{qi}", strategy=args.strategy,  # type: ignore[arg-type]
                               members=tuple(own + spill), retry=2, wrapup=0,
                               announce_every=20, max_wait=3600,
                               overflow=(OverflowRule(after=30, tier=2),)))
    acd = Acd(specs, 0.0, rng=random.Random(2))
    now = 0.0
    for a in agents:
        acd.login(a, now)
    calls = 0
    talking: dict[str, str] = {}  # call -> agent

    def handle(ds: list[object]) -> None:
        for d in ds:
            if isinstance(d, Offer):
                agent = d.agents[0]
                for x in acd.answered(d.offer_id, agent, now):
                    del x
                talking[d.call_id] = agent

    def join() -> list[object]:
        nonlocal calls
        calls += 1
        prio = 5 if rng.random() < 0.05 else 0
        return list(acd.join(f"c{calls}", f"q{rng.randrange(nq)}", now, priority=prio))

    # Fill: every agent busy, then the line.
    while len(talking) < na:
        handle(join())
    for _ in range(args.callers):
        handle(join())
    waiting = sum(len(q.line) for q in acd._queues.values())
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[0]}")
    print(f"setup: {nq} queues, {na} agents (each in 2 queues), {waiting} callers waiting, "
          f"strategy {args.strategy}")

    t_free: list[float] = []
    t_answer: list[float] = []
    t_join: list[float] = []
    t_tick: list[float] = []
    ticks_with_work = 0
    for _ in range(args.events):
        now += 0.05
        while (d := acd.next_deadline()) is not None and d <= now:
            t0 = time.perf_counter_ns()
            out = acd.tick(d)
            t_tick.append((time.perf_counter_ns() - t0) / 1e6)
            ticks_with_work += bool(out)
            handle(out)
        call = rng.choice(list(talking))
        del talking[call]
        t0 = time.perf_counter_ns()
        out = acd.call_ended(call, now, "caller")
        t_free.append((time.perf_counter_ns() - t0) / 1e6)
        for d in out:
            if isinstance(d, Offer):
                t0 = time.perf_counter_ns()
                acd.answered(d.offer_id, d.agents[0], now)
                t_answer.append((time.perf_counter_ns() - t0) / 1e6)
                talking[d.call_id] = d.agents[0]
        t0 = time.perf_counter_ns()
        out = acd.join(f"c{calls + 1}", f"q{rng.randrange(nq)}", now,
                       priority=5 if rng.random() < 0.05 else 0)
        calls += 1
        t_join.append((time.perf_counter_ns() - t0) / 1e6)
        handle(list(out))
    waiting = sum(len(q.line) for q in acd._queues.values())
    print(f"after {args.events} events ({now:.0f} s of model time): {waiting} waiting, "
          f"{len(talking)} talking")
    goal = "(goal < 5 ms p99)"
    for name, xs in (("agent frees -> offer (call_ended)", t_free), ("answered", t_answer),
                     ("join", t_join), ("tick", t_tick)):
        print(f"{name:36s} n={len(xs):6d}  p50 {statistics.median(xs):7.3f} ms  "
              f"p99 {pct(xs, 0.99):7.3f} ms  max {max(xs):7.3f} ms"
              + (f"  {goal}" if name.startswith("agent") else ""))
    print(f"ticks that decided something: {ticks_with_work}")
    print(f"load average at end: {Path('/proc/loadavg').read_text().split()[0]}")


if __name__ == "__main__":
    main()
