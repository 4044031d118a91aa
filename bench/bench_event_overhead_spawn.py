"""Event overhead of the per-event script transport, as ratios measured in one run.

    .venv/bin/python bench/bench_event_overhead_spawn.py [N]

For the same trivial script (prints `answer`) it times, N times each, interleaved:
  bare      subprocess.run() of the script with the event on stdin (the floor: fork+exec+wait)
  threaded  run_script() under asyncio's default ThreadedChildWatcher (Python 3.11)
  pidfd     run_script() under runner.PidfdWatcher (what Python 3.12 does by default)
  contained the same with script containment on, as under `pbx run` (child subreaper and a
            sweep for leftover processes after every run: pbxcore/script/contain.py)
and prints medians, overhead = run_script - bare, and the pidfd/threaded ratio. Nothing asserts
an absolute time: the numbers only mean something relative to each other on one machine.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pbxcore.script import contain  # noqa: E402
from pbxcore.script.events import Event, event_env, event_json  # noqa: E402
from pbxcore.script.runner import PidfdWatcher, run_script  # noqa: E402


def bare(script: Path, ev: Event) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(script)], input=event_json(ev), capture_output=True,
                   env=event_env(ev, {}), start_new_session=True, check=True)
    return time.perf_counter() - t0


async def core(script: Path, ev: Event) -> float:
    t0 = time.perf_counter()
    r = await run_script(script, ev, env={}, timeout=5.0)
    assert r.ok, r.error
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    ev = Event("incoming", "bench-1", caller="1000", called="2000", route="bench")
    times: dict[str, list[float]] = {"bare": [], "threaded": [], "pidfd": [], "contained": []}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "answer.sh")
        script.write_text("#!/bin/sh\necho answer\n")
        script.chmod(0o755)
        policy = asyncio.get_event_loop_policy()

        async def batch(kind: str, k: int) -> None:
            for _ in range(k):
                times[kind].append(await core(script, ev))

        def pidfd(contained: bool) -> None:
            policy.set_child_watcher(PidfdWatcher())
            # The subreaper bit stays set once enabled; the sweep runs only while enabled.
            contain._enabled = False  # noqa: SLF001 (a bench toggling the switch's mode)
            if contained:
                contain.enable()
            asyncio.run(batch("contained" if contained else "pidfd", 10))
            contain._enabled = False  # noqa: SLF001

        for i in range(n // 10):
            for _ in range(10):
                times["bare"].append(bare(script, ev))
            policy.set_child_watcher(asyncio.ThreadedChildWatcher())
            asyncio.run(batch("threaded", 10))
            for contained in (i % 2 == 0, i % 2 == 1):  # alternate: no order bias
                pidfd(contained)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"runs per kind: {len(times['bare'])}")
    for k, v in med.items():
        print(f"  {k:9s} median {v:7.3f} ms")
    for k in ("threaded", "pidfd", "contained"):
        print(f"  overhead {k:9s} {med[k] - med['bare']:7.3f} ms  ({med[k] / med['bare']:.2f}x bare)")
    print(f"  pidfd / threaded = {med['pidfd'] / med['threaded']:.2f}")
    print(f"  containment costs {med['contained'] - med['pidfd']:+.3f} ms per run (contained - pidfd)")


if __name__ == "__main__":
    main()
