"""run_script against real scripts: bash and python, good and bad, hostile callers, leftovers.

Every test that starts a script checks that its process group is empty afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pbxcore.script.actions import Answer, Log, Play
from pbxcore.script.events import Event, event_env
from pbxcore.script.runner import (
    MAX_STDERR,
    PidfdWatcher,
    RunResult,
    run_script,
    use_pidfd_child_watcher,
)

EV = Event("incoming", "call-1", caller="1000", caller_name="Ann", called="2000", route="main",
           vars={"tier": "gold"})


def script(tmp: Path, body: str, name: str = "s.sh", mode: int = 0o755) -> Path:
    path = tmp / name
    path.write_text(body)
    path.chmod(mode)
    return path


def _states(pgid: int) -> list[str]:
    """Process states (R, S, Z, ...) of the members of a process group, from /proc."""
    states = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            if int(fields[2]) == pgid:
                states.append(fields[0])
    return states


def _poll(cond: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def assert_group_gone(r: RunResult) -> None:
    """Nothing of the script still runs; killed orphans may be zombies for a moment until
    init reaps them (this machine's PID 1 reaps about once a second), then none is left."""
    assert r.pid is not None
    pgid = r.pid
    assert _poll(lambda: all(s == "Z" for s in _states(pgid)), 0.5), _states(pgid)

    def empty() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    assert _poll(empty, 5.0), f"process group {pgid} still has members: {_states(pgid)}"


def gone(pid: int) -> bool:
    """Dead (a zombie at most)."""
    def dead() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    return _poll(dead, 0.5)


async def test_bash_ok_with_env_stdin_and_stderr(tmp_path: Path) -> None:
    s = script(tmp_path, """#!/bin/bash
read -r line
echo "answer"
echo "log $PBX_EVENT $PBX_CALLER $PBX_VAR_TIER $PBX_PROTOCOL"
echo "play 'hello world'"
echo "diagnostics" >&2
[ "${line:0:12}" = '{"protocol":' ] || exit 9
""")
    r = await run_script(s, EV, env={}, timeout=5)
    assert (r.ok, r.error, r.exit_status) == (True, None, 0)
    assert r.actions == [Answer(), Log("incoming 1000 gold 1"), Play(("hello world",))]
    assert r.stderr == b"diagnostics\n"
    assert r.duration < 5 and r.started > 0
    assert_group_gone(r)


async def test_python_json_output_env_and_process_group(tmp_path: Path) -> None:
    s = script(tmp_path, f"""#!{sys.executable}
import json, os, sys
ev = json.load(sys.stdin)
ids = [os.getpid(), os.getpgid(0), os.getsid(0)]
print(json.dumps({{"actions": [{{"action": "log", "text": json.dumps(ids)}},
                              {{"action": "set", "vars": {{"seen": ev["caller_name"]}}}},
                              {{"action": "gather", "max": 4, "finish": "#"}}]}}))
print(json.dumps(dict(os.environ)), file=sys.stderr)
print(os.getcwd(), file=sys.stderr)
""", name="s.py")
    r = await run_script(s, EV, env={"CRM_URL": "http://crm.invalid"}, timeout=5,
                         cwd=tmp_path)
    assert r.ok, r.error
    assert [a.verb for a in r.actions] == ["log", "set", "gather"]
    pid, pgid, sid = json.loads(r.actions[0].text)  # type: ignore[attr-defined]
    assert pid == pgid == sid == r.pid  # own session and process group
    env_line, cwd_line = r.stderr.decode().splitlines()
    # The script sees exactly the contract's environment, nothing of ours.
    seen = json.loads(env_line)
    assert re.fullmatch("[0-9a-f]{16}", seen.pop("PBX_RUN_ID"))  # contain: marks this run
    assert seen == event_env(EV, {"CRM_URL": "http://crm.invalid"})
    assert cwd_line == str(tmp_path)
    assert_group_gone(r)


async def test_exit_status_is_a_failure(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/sh\necho answer\necho oops >&2\nexit 3\n")
    r = await run_script(s, EV, env={}, timeout=5)
    assert (r.ok, r.error, r.exit_status, r.actions) == (False, "exit status 3", 3, [])
    assert r.stdout == b"answer\n" and r.stderr == b"oops\n"
    assert_group_gone(r)


async def test_killed_by_a_signal(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/sh\nkill -SEGV $$\n")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.error == "killed by signal 11 (SIGSEGV)" and r.exit_status == -11


async def test_timeout_kills_the_group_promptly(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/sh\necho answer\nsleep 30\n")
    r = await run_script(s, EV, env={}, timeout=0.5)
    assert (r.ok, r.error, r.exit_status) == (False, "timeout after 0.5 s", -9)
    assert 0.5 <= r.duration < 2
    assert r.stdout == b"answer\n"
    assert_group_gone(r)


async def test_huge_output_is_cut_and_killed(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/sh\nexec yes answer\n")
    r = await run_script(s, EV, env={}, timeout=5)
    assert (r.ok, r.error) == (False, "output larger than 65536 bytes")
    assert len(r.stdout) == 65536 and r.duration < 2
    assert_group_gone(r)
    r = await run_script(s, EV, env={}, timeout=5, max_output=1000)
    assert r.error == "output larger than 1000 bytes" and len(r.stdout) == 1000


async def test_output_cap_is_inclusive(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/sh\nprintf 'answer\\n'\n")  # 7 bytes
    assert (await run_script(s, EV, env={}, timeout=5, max_output=7)).ok
    assert not (await run_script(s, EV, env={}, timeout=5, max_output=6)).ok


async def test_invalid_output_and_too_many_actions(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/sh\necho answer\necho plya hello\n")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.error == "line 2: unknown action 'plya' (did you mean 'play'?)"
    assert r.exit_status == 0 and r.actions == []
    s = script(tmp_path, "#!/bin/sh\nfor i in $(seq 6); do echo ring; done\n", name="many.sh")
    r = await run_script(s, EV, env={}, timeout=5, max_actions=5)
    assert r.error == "line 6: more than 5 actions"


async def test_missing_script(tmp_path: Path) -> None:
    r = await run_script(Path("scripts/x.py"), EV, env={}, timeout=5, cwd=tmp_path)
    assert (r.ok, r.error, r.pid, r.exit_status) == (False, "script not found: scripts/x.py",
                                                     None, None)


async def test_not_executable_and_directory(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/sh\necho answer\n", mode=0o644)
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.error == f"not executable: {s}"
    r = await run_script(tmp_path, EV, env={}, timeout=5)
    assert r.error == f"not executable: {tmp_path} is a directory"


async def test_bad_interpreter(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/nonexistent/python\nprint('answer')\n")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.error == f"bad interpreter: #!/nonexistent/python (in {s})"
    noexec = tmp_path / "interp.txt"
    noexec.write_text("")
    s = script(tmp_path, f"#!{noexec}\n", name="t.sh")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.error == f"bad interpreter: #!{noexec} is not executable (in {s})"
    s = script(tmp_path, "echo answer\n", name="noshebang.sh")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.error == f"bad interpreter: {s} has no #! line and is not a program"


async def test_child_holding_stdout_does_not_hang_the_call(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/bash\nsleep 30 &\necho \"log $!\"\necho answer\n")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.ok, r.error
    assert r.actions[1] == Answer()
    assert r.duration < 2
    assert r.warnings == ("killed processes the script left holding its output open",)
    child = int(r.actions[0].text)  # type: ignore[attr-defined]
    assert gone(child)
    assert_group_gone(r)


async def test_detached_child_in_the_group_is_killed_too(tmp_path: Path) -> None:
    s = script(tmp_path, "#!/bin/bash\nsleep 30 >/dev/null 2>&1 </dev/null &\necho \"log $!\"\n")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.ok and r.warnings == ()
    assert gone(int(r.actions[0].text))  # type: ignore[attr-defined]
    assert_group_gone(r)


async def test_stderr_is_bounded_head_and_tail(tmp_path: Path) -> None:
    s = script(tmp_path, f"""#!{sys.executable}
import sys
sys.stderr.write("HEAD" + "x" * 200000 + "TAIL")
print("answer")
""", name="noisy.py")
    r = await run_script(s, EV, env={}, timeout=5)
    assert r.ok
    assert r.stderr.startswith(b"HEAD") and r.stderr.endswith(b"TAIL")
    assert b"bytes of stderr dropped" in r.stderr
    assert len(r.stderr) < MAX_STDERR + 100


async def test_script_that_ignores_a_large_stdin(tmp_path: Path) -> None:
    big = Event("incoming", "c", vars={f"v{i}": "y" * 300 for i in range(1000)})
    s = script(tmp_path, "#!/bin/sh\necho answer\n")
    r = await run_script(s, big, env={}, timeout=5)
    assert r.ok and r.actions == [Answer()]
    assert_group_gone(r)


HOSTILE = ["1000\nhangup", "$(touch pwned)", "() { :;}; touch pwned", "a\x00b`touch pwned`"]


@pytest.mark.parametrize("caller", HOSTILE)
async def test_hostile_caller_id_executes_nothing(tmp_path: Path, caller: str) -> None:
    ev = Event("incoming", "c", caller=caller, caller_name=caller, vars={"x": caller})
    s = script(tmp_path, """#!/bin/bash
cat > stdin.json
printf '%s' "$PBX_CALLER" > caller.txt
export -p > env.txt
echo answer
""")
    r = await run_script(s, ev, env={}, timeout=5, cwd=tmp_path)
    assert r.ok and r.actions == [Answer()]
    assert not (tmp_path / "pwned").exists()
    clean = (tmp_path / "caller.txt").read_text()
    assert clean == caller.replace("\n", "").replace("\x00", "")
    assert json.loads((tmp_path / "stdin.json").read_bytes())["caller"] == caller
    assert "BASH_FUNC" not in (tmp_path / "env.txt").read_text()
    assert_group_gone(r)


async def test_naive_script_echoing_the_caller_name_gets_one_action(tmp_path: Path) -> None:
    ev = Event("incoming", "c", caller_name="Eve\nhangup\nplay x")
    s = script(tmp_path, '#!/bin/sh\necho "log $PBX_CALLER_NAME"\necho answer\n')
    r = await run_script(s, ev, env={}, timeout=5)
    assert r.actions == [Log("Evehangupplay x"), Answer()]


@pytest.fixture(params=["threaded", "pidfd"])
def watcher(request: pytest.FixtureRequest) -> Iterator[str]:
    policy = asyncio.get_event_loop_policy()
    use_pidfd_child_watcher()
    previous = policy.get_child_watcher()
    new = asyncio.ThreadedChildWatcher() if request.param == "threaded" else PidfdWatcher()
    policy.set_child_watcher(new)
    yield request.param
    policy.set_child_watcher(previous)


async def test_both_child_watchers(tmp_path: Path, watcher: str) -> None:
    ok = script(tmp_path, "#!/bin/bash\nsleep 30 &\necho answer\n")
    slow = script(tmp_path, "#!/bin/sh\nsleep 30\n", name="slow.sh")
    results = await asyncio.gather(
        run_script(ok, EV, env={}, timeout=5), run_script(slow, EV, env={}, timeout=0.3),
        *(run_script(ok, EV, env={}, timeout=5) for _ in range(8)))
    assert [r.ok for r in results] == [True, False] + [True] * 8
    assert results[1].error == "timeout after 0.3 s"
    for r in results:
        assert_group_gone(r)
