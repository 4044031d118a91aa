"""Containment of script runs: nothing a script starts outlives its run (issue 9, item 8).

Every run already leads its own session and process group, and the runner SIGKILLs that group.
What escapes the group is a descendant that called setsid() (a double fork, a daemon with its
output on /dev/null). To catch those `pbx run` makes the switch a child subreaper
(PR_SET_CHILD_SUBREAPER, Linux 3.4): an orphaned descendant of a script is then re-parented to the
switch instead of to init, so it shows up among the switch's own children
(/proc/self/task/PID/children). After every run, and when a worker stops, `sweep()` reads that
list, skips the processes the switch spawned itself (`own`), and SIGKILLs and reaps every other
one unless it carries the PBX_RUN_ID of a run still in progress (its script may still need it);
killing one re-parents its own children to the switch, so the sweep repeats until none is left.
Nothing walks /proc and nothing is forked: a run that left nothing behind costs one read of a
short file.

Why not a cgroup v2 per run: Python's subprocess cannot spawn into a cgroup (no clone3 with
CLONE_INTO_CGROUP), moving the pid after the spawn races with the script's first fork, and doing
it in the child (preexec_fn) would cost the vfork fast path on every run; many hosts (containers)
do not delegate a writable cgroup either.

`[scripts] user` (configure) makes every script and worker run as that user, through
subprocess's user=/group=/extra_groups= (setgid, setgroups([]), setuid in the child).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import time
from typing import Any

log = logging.getLogger("pbxcore.script")

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
RUN_ID_ENV = "PBX_RUN_ID"
SWEEP_LIMIT = 2.0
"""Longest a sweep waits for the processes it killed to be reaped (they are SIGKILLed)."""
YOUNG = 1.0
"""Seconds a child without PBX_RUN_ID is left alone: a script or worker the switch is starting
right now is its child before `own()` knows its pid, and until its exec its environment is still
the switch's own (no PBX_RUN_ID). Killing it there made other calls' scripts fail with exit
status 255 under load (found by bench_concurrent_calls at 2,000 calls)."""

_enabled = False
_own: set[int] = set()  # pids the switch spawned itself (scripts, workers): never swept
_active: set[str] = set()  # PBX_RUN_IDs of runs in progress
_spawn: dict[str, Any] = {}  # extra subprocess arguments ([scripts] user)
_swept = 0


def enable() -> bool:
    """Make this process a child subreaper and turn sweeping on; True if it worked. Called by
    `pbx run` only: a process that spawns other children (a test runner) must not sweep them."""
    global _enabled
    if _enabled:
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log.warning("cannot become a child subreaper: processes a script daemonises may outlive it")
        return False
    _enabled = True
    return True


def enabled() -> bool:
    return _enabled


def configure(uid: int | None, gid: int | None) -> None:
    """Run scripts and workers as uid/gid from now on (None: as the switch)."""
    _spawn.clear()
    if uid is not None and gid is not None:
        _spawn.update(user=uid, group=gid, extra_groups=[])


def spawn_args() -> dict[str, Any]:
    """Extra keyword arguments for the subprocess that runs a script or worker."""
    return _spawn


def new_run() -> str:
    """A fresh PBX_RUN_ID, active until `finish`."""
    run_id = secrets.token_hex(8)
    _active.add(run_id)
    return run_id


def own(pid: int | None) -> None:
    if pid is not None:
        _own.add(pid)


def finish(run_id: str, pid: int | None) -> None:
    """The run is over and its process reaped: what it left behind may be swept."""
    _active.discard(run_id)
    if pid is not None:
        _own.discard(pid)


def swept() -> int:
    """How many leftover processes sweeps have killed in this process (for tests and logs)."""
    return _swept


def _children() -> list[int]:
    # Orphans are re-parented to the subreaper's thread group leader (the kernel's
    # find_new_reaper picks the first live thread, the leader), so its list is the one to read.
    # os.open/os.read: a third of what open() costs, and this runs after every script run.
    try:
        fd = os.open(f"/proc/self/task/{os.getpid()}/children", os.O_RDONLY)
    except OSError:
        return []
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return [int(p) for p in b"".join(chunks).split()]


def _run_id_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return None
    key = RUN_ID_ENV.encode() + b"="
    for item in env.split(b"\0"):
        if item.startswith(key):
            return item[len(key):].decode("ascii", "replace")
    return None


def _age(pid: int) -> float:
    """Seconds since `pid` started (/proc/PID/stat field 22, in clock ticks since boot)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    fields = stat.rsplit(b")", 1)[-1].split()  # the command name may hold spaces and ")"
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 is the 20th after ")"
    return max(0.0, uptime - started)


def _leftovers() -> list[int]:
    out = []
    for pid in _children():
        if pid in _own:
            continue
        run_id = _run_id_of(pid)
        if run_id is not None and run_id in _active:
            continue  # an orphan of a run still going on: swept when that run ends
        if run_id is None and _age(pid) < YOUNG:
            continue  # maybe a script being started (see YOUNG): the next sweep decides
        out.append(pid)
    return out


async def sweep() -> int:
    """Kill and reap every leftover child (see the module docstring); how many were killed."""
    global _swept
    if not _enabled:
        return 0
    killed = 0
    deadline = time.monotonic() + SWEEP_LIMIT
    pending: set[int] = set()
    while time.monotonic() < deadline:
        for pid in _leftovers():
            if pid not in pending:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)  # our child until we reap it: no pid reuse
                pending.add(pid)
                killed += 1
        if not pending:
            break
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pending.discard(pid)  # its children are ours now: the next round sees them
        if pending:
            await asyncio.sleep(0.002)
    if killed:
        _swept += killed
        log.warning("killed %d processes a script left running after its run", killed)
    return killed
