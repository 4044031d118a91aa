"""Running a route's script for one event: the per-event process transport of protocol v1 (I/O).

The script is exec'ed directly (its #! line is honoured by the kernel, never by a shell), as the
leader of a new session and process group, with only the environment event_env() builds, the
event as one JSON line on stdin, and a deadline. Everything a script can do wrong is a normal
result, never an exception: it cannot be found or executed, it exits non-zero, runs past the
deadline, prints too much or prints something that is not an action list. On every path the
whole process group gets SIGKILL before we return, so nothing it started survives the event; a
leftover child that keeps stdout open after the script exited gets EOF_GRACE, then the same.
What left the group (setsid: a double fork, a daemon) is found and killed by `contain.sweep`.
Output is collected by a SubprocessProtocol with hard caps, so a noisy script cannot make the
switch buffer without bound.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVarTuple, Unpack, cast

from pbxcore.script import contain
from pbxcore.script.actions import MAX_ACTIONS, Action, ActionError, parse_actions
from pbxcore.script.events import Event, event_env, event_json

_Ts = TypeVarTuple("_Ts")

MAX_OUTPUT = 65536
"""Default cap on stdout, bytes."""
MAX_STDERR = 65536
"""Cap on the stderr kept for the trace: the first and last half, with a marker between."""
EOF_GRACE = 0.2
"""How long stdout may stay open after the script exited (a child holding it) before we kill."""
_watcher_checked = False
REAP_LIMIT = 5.0
"""How long to wait for a SIGKILLed process to be reaped before giving up on its status."""


@dataclass(frozen=True)
class RunResult:
    """What one run of a script produced."""

    ok: bool
    """Exit status 0 within the deadline and valid output."""
    actions: list[Action]
    """The parsed actions (empty unless ok)."""
    error: str | None
    """Why it failed, for the trace: 'timeout after 5.0 s', 'exit status 3', 'line 2: ...'."""
    exit_status: int | None
    """Exit status; negative = killed by that signal (-9 after our SIGKILL); None = no process."""
    stdout: bytes
    """What the script printed (at most max_output bytes)."""
    stderr: bytes
    """What the script wrote on stderr (head and tail when longer than MAX_STDERR)."""
    started: float
    """Wall-clock start, seconds since the epoch (for the trace)."""
    duration: float
    """Seconds from exec to reaped, monotonic clock."""
    pid: int | None
    """Process id (= process group id) of the script, None if it never started."""
    warnings: tuple[str, ...] = field(default=())
    """Things worth a trace line that did not fail the run (a killed leftover process)."""


class _Collector(asyncio.SubprocessProtocol):
    """Gathers stdout and stderr within caps and signals exit, overflow and pipe EOF."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_output: int, max_stderr: int) -> None:
        self.max_output = max_output
        self.stdout = bytearray()
        self.half = max_stderr // 2
        self.err_head = bytearray()
        self.err_tail = bytearray()
        self.err_total = 0
        self.exited: asyncio.Future[None] = loop.create_future()
        self.overflow: asyncio.Future[None] = loop.create_future()
        self.pipes_closed: asyncio.Future[None] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            room = self.max_output - len(self.stdout)
            self.stdout += data[: max(room, 0)]
            if len(data) > room and not self.overflow.done():
                self.overflow.set_result(None)
        elif fd == 2:
            self.err_total += len(data)
            take = min(len(data), self.half - len(self.err_head))
            self.err_head += data[:take]
            self.err_tail += data[take:]
            if len(self.err_tail) > self.half:
                del self.err_tail[: len(self.err_tail) - self.half]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.pipes_closed.done():
            self.pipes_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    def stderr(self) -> bytes:
        dropped = self.err_total - len(self.err_head) - len(self.err_tail)
        if dropped <= 0:
            return bytes(self.err_head + self.err_tail)
        marker = f"\n[... {dropped} bytes of stderr dropped ...]\n".encode()
        return bytes(self.err_head) + marker + bytes(self.err_tail)


def _kill_group(pgid: int) -> None:
    # The group id is the script's pid (start_new_session). The kernel keeps a pid out of reuse
    # while any process still has it as its group id, so this cannot hit a stranger's group
    # unless the group emptied and the pid space wrapped within this call's lifetime.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _interpreter(path: str) -> str:
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:
        return "?"
    if not first.startswith(b"#!"):
        return "no #! line"
    return first.decode("utf-8", "replace").strip()


def _exec_error(shown: str, argv0: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        if not os.path.lexists(argv0):
            return f"script not found: {shown}"
        return f"bad interpreter: {_interpreter(argv0)} (in {shown})"
    if exc.errno == errno.EACCES:
        if os.path.isdir(argv0):
            return f"not executable: {shown} is a directory"
        if os.access(argv0, os.X_OK):
            return f"bad interpreter: {_interpreter(argv0)} is not executable (in {shown})"
        return f"not executable: {shown}"
    if exc.errno == errno.ENOEXEC:
        return f"bad interpreter: {shown} has no #! line and is not a program"
    return f"cannot run {shown}: {exc.strerror}"


def _status_error(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "?"
        return f"killed by signal {-status} ({name})"
    return f"exit status {status}"


async def run_script(
    path: Path,
    event: Event,
    *,
    env: Mapping[str, str],
    timeout: float,
    max_output: int = MAX_OUTPUT,
    max_actions: int = MAX_ACTIONS,
    cwd: Path | None = None,
) -> RunResult:
    """Run `path` for `event` and parse its actions; script faults come back as ok=False."""
    global _watcher_checked
    loop = asyncio.get_running_loop()
    if not _watcher_checked and isinstance(loop, asyncio.SelectorEventLoop):
        _watcher_checked = True  # once per process: see use_pidfd_child_watcher
        use_pidfd_child_watcher()  # (uvloop watches its children itself)
    started, t0 = time.time(), time.monotonic()
    shown, argv0 = str(path), os.path.abspath(path)

    def result(error: str | None, **kw: Any) -> RunResult:
        kw.setdefault("actions", [])
        kw.setdefault("exit_status", None)
        kw.setdefault("stdout", b"")
        kw.setdefault("stderr", b"")
        kw.setdefault("pid", None)
        return RunResult(ok=error is None, error=error, started=started,
                         duration=time.monotonic() - t0, **kw)

    proto = _Collector(loop, max_output, MAX_STDERR)
    run_env = event_env(event, env)
    run_env[contain.RUN_ID_ENV] = run_id = contain.new_run()  # marks what this run starts
    try:
        transport, _ = await loop.subprocess_exec(
            lambda: proto, argv0,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=run_env, cwd=cwd,
            start_new_session=True, **contain.spawn_args(),
        )
    except OSError as exc:
        contain.finish(run_id, None)
        return result(_exec_error(shown, argv0, exc))
    except (ValueError, subprocess.SubprocessError) as exc:  # a NUL in the env or cwd; setuid
        contain.finish(run_id, None)
        return result(f"cannot run {shown}: {exc}")

    pid = transport.get_pid()
    contain.own(pid)
    error: str | None = None
    warnings: list[str] = []
    try:
        # Duck-typed: uvloop's pipe transports are not asyncio.WriteTransport subclasses.
        stdin = cast(asyncio.WriteTransport, transport.get_pipe_transport(0))
        try:
            stdin.write(event_json(event))  # buffered by the loop: never blocks on a non-reader
            stdin.write_eof()
        except (RuntimeError, OSError):
            pass  # the script already exited without reading stdin (uvloop closes the pipe)
        deadline = loop.time() + timeout
        await asyncio.wait({proto.exited, proto.overflow}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        if proto.exited.done() and not proto.overflow.done():
            grace = max(0.0, min(EOF_GRACE, deadline - loop.time()))
            await asyncio.wait({proto.pipes_closed, proto.overflow}, timeout=grace,
                               return_when=asyncio.FIRST_COMPLETED)
            if not proto.pipes_closed.done() and not proto.overflow.done():
                warnings.append("killed processes the script left holding its output open")
        if proto.overflow.done():
            error = f"output larger than {max_output} bytes"
        elif not proto.exited.done():
            error = f"timeout after {float(timeout)} s"
    finally:
        _kill_group(pid)
        # Let the child watcher reap the leader before closing: close() on a live-looking
        # process calls Popen.poll(), which could reap it first and lose the exit status.
        await asyncio.wait({proto.exited}, timeout=REAP_LIMIT)
        transport.close()  # closes our pipe ends
        await asyncio.wait({proto.finished}, timeout=REAP_LIMIT)
        contain.finish(run_id, pid)
        if await contain.sweep():
            warnings.append("killed processes the script left running outside its group")

    status = transport.get_returncode()
    if error is None and status is None:
        error = "process not reaped"
    elif error is None and status != 0:
        assert status is not None
        error = _status_error(status)
    actions: list[Action] = []
    if error is None:
        try:
            actions = parse_actions(bytes(proto.stdout), max_actions=max_actions)
        except ActionError as exc:
            error = str(exc)
    return result(error, actions=actions, exit_status=status, stdout=bytes(proto.stdout),
                  stderr=proto.stderr(), pid=pid, warnings=tuple(warnings))


# --- child watcher ---------------------------------------------------------------------------

class PidfdWatcher(asyncio.AbstractChildWatcher):
    """Python 3.12's pidfd child watcher for 3.11: one pidfd in the running loop per child.

    3.11's default ThreadedChildWatcher starts a thread per child; its own PidfdChildWatcher is
    bound to one loop. This one, like 3.12's, uses whatever loop is running, so it is safe for
    every loop and thread. (Uses the deprecated-in-3.12 watcher API, only on 3.11.)
    """

    def add_child_handler(self, pid: int, callback: Callable[[int, int, Unpack[_Ts]], object],
                          *args: *_Ts) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._do_wait, loop, pid, pidfd, callback, args)

    @staticmethod
    def _do_wait(loop: asyncio.AbstractEventLoop, pid: int, pidfd: int, callback: Any,
                 args: tuple[Any, ...]) -> None:
        loop.remove_reader(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else; same convention as asyncio
            returncode = 255
        os.close(pidfd)
        callback(pid, returncode, *args)

    def remove_child_handler(self, pid: int) -> bool:
        return True

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        pass

    def close(self) -> None:
        pass

    def is_active(self) -> bool:
        return True

    def __enter__(self) -> PidfdWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def use_pidfd_child_watcher() -> bool:
    """On Python 3.11 with pidfd support, replace asyncio's default ThreadedChildWatcher.

    Measured by bench/bench_event_overhead_spawn.py (2 cores, 3.11.7: spawn overhead over a bare
    subprocess.run 0.17 ms instead of 0.26 ms). Python 3.12+ already does this by itself.
    run_script() calls it once; an application may call it at start-up instead.
    Leaves a watcher the application chose alone. Returns True if the pidfd watcher is in use.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return sys.version_info >= (3, 12)
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # kernel before 5.3, or seccomp
        return False
    policy = asyncio.get_event_loop_policy()
    current = policy.get_child_watcher()
    if isinstance(current, PidfdWatcher):
        return True
    if type(current) is not asyncio.ThreadedChildWatcher:
        return False
    policy.set_child_watcher(PidfdWatcher())
    return True
