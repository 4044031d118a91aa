"""The replay engine against real script processes (the switch's ProcessTransport)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from pbxcore.testing.fixture import load_fixture
from pbxcore.testing.replay import replay_file, replay_path, run_fixture
from pbxcore.testing.report import failure_text
from pbxcore.testing.transport import TransportUnavailable, open_transport
from tests.unit.testing.conftest import Writer

COUNTER = """read -r line
case "$PBX_EVENT" in
  incoming) echo answer; echo "set N=1 WHO=$PBX_CALLER"; echo "gather max=1";;
  gather) echo "log n=$PBX_VAR_N digits=$PBX_DIGITS result=$PBX_RESULT crm=$CRM"
          echo "set N=$((PBX_VAR_N + 1))"; echo "gather max=1";;
  hangup) echo "log bye $PBX_VAR_N $PBX_HANGUP_CAUSE";;
esac
"""


def test_steps_carry_vars_env_and_extra(script: Writer, fixture_file: Writer) -> None:
    script("s.sh", COUNTER)
    path = fixture_file("f.json", "s.sh", env={"CRM": "db1"}, steps=[
        {"event": "incoming", "expect": ["answer", "set N=1 WHO=1001", "gather max=1"]},
        {"event": "gather", "result": "ok", "digits": "5",
         "expect": ["log n=1 digits=5 result=ok crm=db1", "set N=2", "gather max=1"]},
        {"event": "gather", "result": "timeout",
         "expect": ["log n=2 digits= result=timeout crm=db1", "set N=3", "gather max=1"]},
        {"event": "hangup", "result": "caller", "extra": {"hangup_cause": "BYE"},
         "expect": ["log bye 3 BYE"]},
    ])
    result = replay_file(path)
    assert result.passed, failure_text(result)
    assert [dict(s.event.vars) for s in result.steps] == [
        {}, {"N": "1", "WHO": "1001"}, {"N": "2", "WHO": "1001"}, {"N": "3", "WHO": "1001"}]


def test_a_wrong_expected_action_fails_with_both_sides(script: Writer,
                                                        fixture_file: Writer) -> None:
    script("s.sh", COUNTER)
    path = fixture_file("f.json", "s.sh", steps=[
        {"event": "incoming", "expect": ["answer", "set N=7 WHO=1001", "gather max=1"]},
        {"event": "gather", "result": "ok", "digits": "1",
         "expect": {"match": "prefix", "actions": ["log n=1 *"]}},
    ])
    result = replay_file(path)
    assert not result.passed
    bad, good = result.steps
    assert not bad.passed and good.passed  # later steps still run, with what was printed
    assert bad.message == "the actions differ (match: exact)"
    assert bad.diff == ("  answer", "- set N=7 WHO=1001", "+ set N=1 WHO=1001", "  gather max=1")
    text = failure_text(result)
    assert "steps[0] incoming: the actions differ" in text
    assert "--- expected\n+++ actual (script output)" in text


@pytest.mark.parametrize(("body", "expect_error", "error"), [
    ("echo 'boom' >&2\nexit 3\n", "exit status", "exit status 3"),
    ("sleep 5\n", "timeout", "timeout after 0.5 s"),
    ("echo answer\necho plya x\n", "line 2", "line 2: unknown action 'plya' (did you mean "
                                             "'play'?)"),
])
def test_expect_error(script: Writer, fixture_file: Writer, body: str, expect_error: str,
                      error: str) -> None:
    script("bad.sh", body)
    ok = replay_file(fixture_file("ok.json", "bad.sh", timeout=0.5, steps=[
        {"event": "incoming", "expect_error": expect_error}]))
    assert ok.passed, failure_text(ok)
    assert ok.steps[0].error == error
    wrong = replay_file(fixture_file("wrong.json", "bad.sh", timeout=0.5, steps=[
        {"event": "incoming", "expect_error": "something else"}]))
    assert not wrong.passed
    assert wrong.steps[0].message == f"expected a script error containing 'something else', " \
                                     f"got {error!r}"


def test_script_error_is_reported_with_stderr(script: Writer, fixture_file: Writer) -> None:
    script("bad.sh", "echo 'Traceback: KeyError' >&2\nexit 1\n")
    result = replay_file(fixture_file("f.json", "bad.sh", steps=[
        {"event": "incoming", "expect": ["answer"]}]))
    step = result.steps[0]
    assert not step.passed and step.message == "script error: exit status 1"
    assert step.exit_status == 1 and "Traceback: KeyError" in step.stderr
    text = failure_text(result)
    assert "stderr:\n  Traceback: KeyError" in text and "exit status: 1" in text


def test_expected_error_but_the_script_succeeded(script: Writer, fixture_file: Writer) -> None:
    script("s.sh", "echo answer\n")
    result = replay_file(fixture_file("f.json", "s.sh", steps=[
        {"event": "incoming", "expect_error": "timeout"}]))
    assert result.steps[0].message == ("expected a script error containing 'timeout', but the "
                                       "script succeeded")
    assert result.steps[0].diff == ("+ answer",)


def test_missing_script(fixture_file: Writer, tmp_path: Path) -> None:
    result = replay_file(fixture_file("f.json", "nope.sh", steps=[
        {"event": "incoming", "expect_error": "script not found"}]))
    assert result.passed, failure_text(result)


def test_goto_is_followed_and_history_carried(script: Writer, fixture_file: Writer) -> None:
    script("scripts/a.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo "goto sub/b.sh";;'
                           ' hangup) echo "log a-hangup";; esac\n')
    script("scripts/sub/b.sh", 'read -r line\ncase "$PBX_EVENT" in\n'
                               '  redirect) echo "log from $PBX_RESULT"; echo "gather max=1";;\n'
                               '  gather) echo "log b $PBX_DIGITS"; echo hangup;;\n'
                               '  hangup) echo "log b-hangup";;\nesac\n')
    path = fixture_file("tests/f.json", "../scripts/a.sh", scripts="../scripts", steps=[
        {"event": "incoming", "expect": ["answer", "goto sub/b.sh"]},
        {"event": "redirect", "result": "a.sh", "expect": ["log from a.sh", "gather max=1"]},
        {"event": "gather", "result": "ok", "digits": "4", "expect": ["log b 4", "hangup"]},
        {"event": "hangup", "result": "script", "expect": ["log b-hangup"]},
    ])
    result = replay_file(path)
    assert result.passed, failure_text(result)
    assert [s.script.name for s in result.steps] == ["a.sh", "b.sh", "b.sh", "b.sh"]
    assert [h.event for h in result.steps[3].event.history] == ["incoming", "redirect"]


async def test_async_replay_and_sync_guard(script: Writer, fixture_file: Writer) -> None:
    script("s.sh", "echo hangup\n")
    path = fixture_file("f.json", "s.sh", steps=[{"event": "incoming", "expect": ["hangup"]}])
    assert (await replay_path(path)).passed
    with pytest.raises(RuntimeError, match="inside an event loop"):
        replay_file(path)


def test_invalid_fixture_is_a_failed_result(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"pbxcore_fixture": 1, "script": "x", "steps": [{"event": "a"}]}')
    result = replay_file(bad)
    assert not result.passed and result.steps == ()
    assert result.error == (f"{bad}: steps[0]: needs exactly one of \"expect\" (the actions) "
                            "or \"expect_error\"")


def test_unavailable_transport_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                fixture_file: Writer) -> None:
    real = importlib.import_module

    def no_worker(name: str, package: str | None = None) -> object:
        if name == "pbxcore.script.worker":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_worker)
    with pytest.raises(TransportUnavailable, match=r"the worker transport is not available in "
                                                   r"this pbxcore \(pbxcore.script.worker is "
                                                   r"missing\)"):
        open_transport("worker", script=Path("x"))
    path = fixture_file("f.json", "s.sh", transport="worker",
                        steps=[{"event": "incoming", "expect": []}])
    result = replay_file(path)
    assert not result.passed and result.error is not None and "worker" in result.error
    with pytest.raises(TransportUnavailable, match="needs a URL"):
        open_transport("webhook", script=Path("x"))
    with pytest.raises(TransportUnavailable, match="unknown transport 'smtp'"):
        open_transport("smtp", script=Path("x"))


async def test_run_fixture_with_a_given_transport(script: Writer, fixture_file: Writer) -> None:
    script("s.sh", "echo answer\n")
    fx = load_fixture(fixture_file("f.json", "s.sh", steps=[{"event": "incoming",
                                                               "expect": ["answer"]}]))
    transport = open_transport("process", script=fx.script)
    result = await run_fixture(fx, transport=transport)
    assert result.passed and result.transport == "process"
