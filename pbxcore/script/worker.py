"""The persistent-worker transport of protocol v1: a pool of long-lived processes (I/O).

Theory of operation: a route with ``worker = "scripts/crm.py"`` gets a :class:`WorkerPool` of
``workers`` processes, started once and kept running, so expensive start-up (an interpreter, a
CRM connection) is paid once per process instead of once per event.  Each is exec'ed like a
per-event script (no shell, its own session and process group, the minimal environment plus the
route's env, ``PBX_PROTOCOL=1``, ``PBX_TRANSPORT=worker``).  The line protocol:

- the switch writes one event per line on the worker's stdin: the same JSON object a per-event
  script reads, plus ``"env"``, the ``PBX_*`` variables a per-event script would have;
- the worker answers every line with exactly one line on stdout: the actions (a JSON array,
  ``{"actions": [...]}``, or one text action), validated by the same parse_actions.

Each slot of the pool runs one event at a time from its own FIFO queue, and every event of a
call goes to the same slot (sticky by call id), so a call's events reach the worker in order and
one worker sees the whole call.  Faults are normal results, as for processes: past the event's
deadline, EOF or exit, an oversize or invalid line → the event fails (the engine runs the
route's fallback); on all but invalid output the worker's process group is killed and the slot
restarts it after a bounded back-off.  stderr is drained all the time into a bounded ring; the
part written during an event goes to its trace, and a failed event gets the recent tail.
An event whose caller went away (the call task was cancelled) is still answered by the worker
and its line discarded, so the line stream never gets out of step.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pbxcore.script import contain
from pbxcore.script.actions import MAX_ACTIONS, Action, ActionError, parse_actions
from pbxcore.script.events import BASE_ENV, PROTOCOL_VERSION, Event, event_dict, event_env
from pbxcore.script.runner import (
    MAX_OUTPUT,
    REAP_LIMIT,
    RunResult,
    _exec_error,
    _status_error,
    use_pidfd_child_watcher,
)

MAX_LINE = MAX_OUTPUT
"""Longest actions line a worker may write, bytes (without the newline)."""
STDERR_RING = 65536
"""How much of a worker's recent stderr is kept, bytes."""
TERM_GRACE = 1.0
"""close(): seconds between SIGTERM and SIGKILL."""
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
"""Restart delay after the first consecutive fault, doubling up to the maximum."""
STICKY_LIMIT = 10000
"""Call ids remembered for stickiness (oldest forgotten first; hangup forgets at once)."""
_CANCEL_GRACE = 1.0  # the slot resolves each request by its deadline; this is a safety net


def worker_line(event: Event, env: Mapping[str, str]) -> bytes:
    """The line a worker reads for `event`: the stdin JSON plus the PBX_* environment."""
    obj = event_dict(event)
    obj["env"] = {k: v for k, v in event_env(event, env).items() if k.startswith("PBX_")}
    return json.dumps(obj, ensure_ascii=True).encode("ascii") + b"\n"


@dataclass(eq=False)
class _Request:
    line: bytes
    deadline: float  # loop time
    timeout: float
    started: float  # wall clock
    t0: float  # monotonic
    future: asyncio.Future[RunResult]


@dataclass(eq=False)
class _Slot:
    """One worker process of the pool and its queue; replaced process by process."""

    index: int
    queue: asyncio.Queue[_Request] = field(default_factory=asyncio.Queue)
    proc: asyncio.subprocess.Process | None = None
    stderr_task: asyncio.Task[None] | None = None
    ring: collections.deque[bytes] = field(default_factory=collections.deque)
    ring_size: int = 0
    stderr_total: int = 0  # bytes ever read from this slot's workers
    faults: int = 0  # consecutive faults, for the back-off
    busy: bool = False
    spawn_error: str | None = None
    restarts: int = 0
    run_id: str = ""  # PBX_RUN_ID of the current worker process (contain.sweep)

    def load(self) -> int:
        return self.queue.qsize() + self.busy

    def alive(self) -> bool:
        proc = self.proc
        return (proc is not None and proc.returncode is None and proc.stdout is not None
                and not proc.stdout.at_eof())

    def stderr_since(self, mark: int) -> bytes:
        data = b"".join(self.ring)
        return data[max(0, len(data) - (self.stderr_total - mark)):]

    def stderr_tail(self) -> bytes:
        return b"".join(self.ring)


class WorkerPool:
    """`size` long-lived processes of `path` answering events as JSON lines (ScriptTransport)."""

    name = "worker"

    def __init__(self, path: Path, size: int, *, env: Mapping[str, str]) -> None:
        if not 1 <= size <= 64:
            raise ValueError(f"worker pool size must be 1..64, not {size}")  # config checks it
        self.path = path
        self.env = dict(env)
        self._slots = [_Slot(i) for i in range(size)]
        self._sticky: collections.OrderedDict[str, _Slot] = collections.OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = self._closed = False

    @property
    def pids(self) -> list[int | None]:
        """Process ids of the live workers, by slot (None: not running)."""
        return [s.proc.pid if s.alive() and s.proc else None for s in self._slots]

    @property
    def restarts(self) -> int:
        return sum(s.restarts for s in self._slots)

    async def start(self) -> None:
        """Spawn every worker now (otherwise the first event does); idempotent."""
        if self._started or self._closed:
            return
        self._started = True  # before the first await: two first events must not both spawn
        use_pidfd_child_watcher()
        for slot in self._slots:
            await self._spawn(slot)
            self._tasks.append(asyncio.create_task(self._serve(slot),
                                                   name=f"worker-{self.path.name}-{slot.index}"))

    async def run(self, script: Path, event: Event, *, env: Mapping[str, str],
                  timeout: float) -> RunResult:
        """Hand `event` to the call's worker and wait for its line (the route's `script` is
        ignored: the pool was built for it)."""
        loop = asyncio.get_running_loop()
        started, t0 = time.time(), time.monotonic()
        if self._closed:
            return _failed("worker pool closed", started, t0)
        await self.start()
        slot = self._slot_for(event.call_id)
        req = _Request(worker_line(event, env), loop.time() + timeout, timeout, started, t0,
                       loop.create_future())
        slot.queue.put_nowait(req)
        try:
            await asyncio.wait({req.future}, timeout=timeout + _CANCEL_GRACE)
        finally:
            if event.name == "hangup":
                self._sticky.pop(event.call_id, None)
            if not req.future.done():
                req.future.cancel()  # the slot skips it or discards its line
        if req.future.cancelled():
            return _failed(f"timeout after {float(timeout)} s", started, t0)
        return req.future.result()

    async def close(self) -> None:
        """Stop every worker: SIGTERM to its group, SIGKILL after TERM_GRACE; reap them."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(self._stop(slot, graceful=True) for slot in self._slots))
        for slot in self._slots:
            while not slot.queue.empty():
                req = slot.queue.get_nowait()
                if not req.future.done():
                    req.future.set_result(_failed("worker pool closed", req.started, req.t0))

    # -- inside -------------------------------------------------------------------------------

    def _slot_for(self, call_id: str) -> _Slot:
        slot = self._sticky.get(call_id)
        if slot is None:
            slot = min(self._slots, key=lambda s: (s.load(), s.index))
            self._sticky[call_id] = slot
            while len(self._sticky) > STICKY_LIMIT:
                self._sticky.popitem(last=False)
        else:
            self._sticky.move_to_end(call_id)
        return slot

    async def _spawn(self, slot: _Slot) -> None:
        env = dict(BASE_ENV)
        env.update(self.env)
        env["PBX_PROTOCOL"] = str(PROTOCOL_VERSION)
        env["PBX_TRANSPORT"] = "worker"
        env[contain.RUN_ID_ENV] = run_id = contain.new_run()  # a worker's run: its whole life
        argv0 = os.path.abspath(self.path)
        try:
            proc = await asyncio.create_subprocess_exec(
                argv0, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True,
                limit=MAX_LINE + 1, **contain.spawn_args(),
            )
        except OSError as exc:
            contain.finish(run_id, None)
            slot.spawn_error = _exec_error(str(self.path), argv0, exc)
            return
        except (ValueError, subprocess.SubprocessError) as exc:  # a NUL in the env; setuid
            contain.finish(run_id, None)
            slot.spawn_error = f"cannot run {self.path}: {exc}"
            return
        contain.own(proc.pid)
        slot.proc, slot.spawn_error, slot.run_id = proc, None, run_id
        slot.stderr_task = asyncio.create_task(self._drain(slot, proc))

    @staticmethod
    async def _drain(slot: _Slot, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(4096):
            slot.ring.append(chunk)
            slot.ring_size += len(chunk)
            slot.stderr_total += len(chunk)
            while slot.ring_size - len(slot.ring[0]) >= STDERR_RING:
                slot.ring_size -= len(slot.ring.popleft())

    async def _stop(self, slot: _Slot, *, graceful: bool = False) -> int | None:
        """Kill the slot's worker group, reap it, finish draining stderr; its exit status."""
        proc, slot.proc = slot.proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            if graceful:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), TERM_GRACE)
        _signal_group(proc.pid, signal.SIGKILL)  # and whatever it left in its group
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), REAP_LIMIT)
        if slot.stderr_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(slot.stderr_task, 0.5)
        # Process has no close(); its transport must be closed or it warns when collected.
        proc._transport.close()  # type: ignore[attr-defined]
        contain.finish(slot.run_id, proc.pid)
        await contain.sweep()  # what the worker daemonised outside its group
        return proc.returncode

    async def _serve(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        while True:
            req = await slot.queue.get()
            if req.future.done():
                continue
            slot.busy = True
            try:
                if not slot.alive():
                    await self._restart(slot, req.deadline)
                if slot.proc is None:
                    error = slot.spawn_error or f"timeout after {float(req.timeout)} s"
                    _resolve(req, _failed(error, req.started, req.t0))
                elif loop.time() >= req.deadline:
                    _resolve(req, _failed(f"timeout after {float(req.timeout)} s "
                                          "(waiting for a worker)", req.started, req.t0))
                else:
                    await self._exchange(slot, req)
            finally:
                slot.busy = False

    async def _restart(self, slot: _Slot, deadline: float) -> None:
        """Spawn a new worker after the back-off of the slot's consecutive faults (bounded by
        the waiting event's deadline: it fails rather than waits past it)."""
        loop = asyncio.get_running_loop()
        await self._stop(slot)
        if slot.faults:
            delay = min(BACKOFF_FIRST * 2 ** (slot.faults - 1), BACKOFF_MAX)
            if loop.time() + delay >= deadline:
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return
            await asyncio.sleep(delay)
        slot.restarts += 1
        await self._spawn(slot)
        if slot.proc is None:
            slot.faults += 1

    async def _exchange(self, slot: _Slot, req: _Request) -> None:
        loop = asyncio.get_running_loop()
        proc = slot.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        mark = slot.stderr_total
        error: str | None = None
        line = b""
        status: int | None = None
        try:
            proc.stdin.write(req.line)
            async with asyncio.timeout_at(req.deadline):
                await proc.stdin.drain()
                line = await proc.stdout.readline()
            if not line.endswith(b"\n"):
                error = "worker closed its output" if not line else "worker closed its output mid-line"
        except TimeoutError:
            error = f"timeout after {float(req.timeout)} s"
        except ValueError:  # StreamReader: the line is longer than its limit
            error = f"output larger than {MAX_LINE} bytes"
        except (BrokenPipeError, ConnectionResetError):
            error = "worker closed its input"
        actions: list[Action] = []
        if error is not None:
            status = await self._stop(slot)
            if status is not None and "closed" in error:
                error += f" ({_status_error(status)})"
            slot.faults += 1
        else:
            try:
                actions = parse_actions(line, max_actions=MAX_ACTIONS)
                slot.faults = 0
            except ActionError as exc:  # a wrong answer, not a broken worker: keep it running
                error = str(exc)
        stderr = slot.stderr_since(mark) if error is None else slot.stderr_tail()
        _resolve(req, RunResult(
            ok=error is None, actions=actions, error=error, exit_status=status,
            stdout=line[:MAX_LINE], stderr=stderr, started=req.started,
            duration=time.monotonic() - req.t0, pid=proc.pid))
        if error is not None and slot.proc is None and not self._closed:
            await self._restart(slot, loop.time() + BACKOFF_MAX + 1)  # warm before the next


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _resolve(req: _Request, result: RunResult) -> None:
    if not req.future.done():
        req.future.set_result(result)


def _failed(error: str, started: float, t0: float) -> RunResult:
    return RunResult(ok=False, actions=[], error=error, exit_status=None, stdout=b"", stderr=b"",
                     started=started, duration=time.monotonic() - t0, pid=None)
