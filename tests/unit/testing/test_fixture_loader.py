"""Fixture format v1: the loader accepts the documented example and names every problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pbxcore.script.actions import Gather
from pbxcore.testing.fixture import FixtureError, find_fixtures, load_fixture, parse_fixture

EXAMPLE: dict[str, Any] = {
    "pbxcore_fixture": 1,
    "name": "caller presses 1 and hears their number",
    "script": "../scripts/ivr.py",
    "transport": "process",
    "timeout": 5,
    "env": {"CRM_DSN": "sqlite:///crm.db"},
    "call": {"caller": "1001", "caller_name": "Alice", "called": "100", "language": "en",
             "route": "^100$", "vars": {}, "headers": {}},
    "steps": [
        {"event": "incoming",
         "expect": ["answer", "set TRIES=1", "gather max=1 timeout=5 prompt=welcome"]},
        {"event": "gather", "result": "ok", "digits": "1",
         "expect": {"match": "prefix", "actions": ["play your-number-is"]}},
        {"event": "hangup", "result": "caller", "extra": {"hangup_cause": "BYE from caller"},
         "expect": []},
        {"event": "gather", "result": "timeout", "expect_error": "timeout"},
    ],
}


def parse(obj: Any) -> Any:
    return parse_fixture(obj, Path("/x/tests/f.json"), shown="f.json")


def with_(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(EXAMPLE)), **changes}


def test_the_documented_example_loads() -> None:
    fx = parse(EXAMPLE)
    assert fx.name == "caller presses 1 and hears their number"
    assert fx.script == Path("/x/tests/../scripts/ivr.py")
    assert fx.scripts == Path("/x/tests/../scripts")
    assert fx.timeout == 5.0 and fx.env == {"CRM_DSN": "sqlite:///crm.db"}
    assert fx.call.caller_name == "Alice" and fx.call.route == "^100$"
    assert [s.event for s in fx.steps] == ["incoming", "gather", "hangup", "gather"]
    first = fx.steps[0].expect
    assert first is not None and first.match == "exact" and not first.explicit
    assert first.actions[2].action == Gather(max=1, prompt="welcome")
    second = fx.steps[1].expect
    assert second is not None and second.match == "prefix" and second.explicit
    assert fx.steps[2].extra == {"hangup_cause": "BYE from caller"}
    assert fx.steps[3].expect_error == "timeout" and fx.steps[3].expect is None


def test_defaults() -> None:
    fx = parse({"pbxcore_fixture": 1, "script": "s.sh", "steps": [{"event": "incoming",
                                                                    "expect": []}]})
    assert fx.name == "f" and fx.transport == "process" and fx.timeout == 5.0
    assert fx.call.language == "en" and fx.call.call_id == "fixture" and fx.call.vars == {}


@pytest.mark.parametrize(("obj", "message"), [
    ([], "f.json: must be an object, got an array"),
    (with_(pbxcore_fixture=2), "f.json: pbxcore_fixture: unsupported fixture format 2 "
                               "(this pbxcore reads 1)"),
    (with_(stpes=[]), "f.json: unknown key 'stpes' (did you mean 'steps'?)"),
    (with_(script=""), "f.json: script: must not be empty"),
    (with_(transport="smtp"), "f.json: transport: must be one of process, worker, webhook, "
                              "got 'smtp'"),
    (with_(transport="webhook"), "f.json: url: the webhook transport needs \"url\": "
                                 "\"http://...\""),
    (with_(timeout=0), "f.json: timeout: must be a number of seconds 0..600, got 0"),
    (with_(timeout=True), "f.json: timeout: must be a number of seconds 0..600, got True"),
    (with_(env={"PBX_X": "1"}), "f.json: env.PBX_X: names are [A-Za-z_][A-Za-z0-9_]* and not "
                                "PBX_* (the switch sets those)"),
    (with_(env={"A": 1}), "f.json: env.A: must be a string, got a number"),
    (with_(call={"caler": "1"}), "f.json: call: unknown key 'caler' (did you mean 'caller'?)"),
    (with_(call={"vars": {"A": None}}), "f.json: call.vars.A: must be a string, got null"),
    (with_(steps=[]), "f.json: steps: must be a non-empty array of steps"),
    (with_(steps=[{"expect": []}]), "f.json: steps[0]: missing \"event\" (incoming, gather, "
                                    "record, redirect, hangup, ...)"),
    (with_(steps=[{"event": "Gather!", "expect": []}]),
     "f.json: steps[0].event: must be an event name such as gather, got 'Gather!'"),
    (with_(steps=[{"event": "gather", "expcet": []}]),
     "f.json: steps[0]: unknown key 'expcet' (did you mean 'expect'?)"),
    (with_(steps=[{"event": "gather"}]),
     "f.json: steps[0]: needs exactly one of \"expect\" (the actions) or \"expect_error\""),
    (with_(steps=[{"event": "gather", "expect": [], "expect_error": "x"}]),
     "f.json: steps[0]: needs exactly one of \"expect\" (the actions) or \"expect_error\""),
    (with_(steps=[{"event": "gather", "expect_error": ""}]),
     "f.json: steps[0].expect_error: must not be empty"),
    (with_(steps=[{"event": "gather", "digits": 1, "expect": []}]),
     "f.json: steps[0].digits: must be a string, got a number"),
    (with_(steps=[{"event": "gather", "extra": {"digits": "1"}, "expect": []}]),
     "f.json: steps[0].extra: bad extra event field 'digits' (keys are lower-case names, not "
     "the fixed fields)"),
    (with_(steps=[{"event": "a", "expect": []}, {"event": "b", "expect": "answer"}]),
     "f.json: steps[1].expect: must be an array of action lines, got a string"),
    (with_(steps=[{"event": "a", "expect": []}, {"event": "b", "expect": []},
                  {"event": "c", "expect": ["answer", "plya x"]}]),
     "f.json: steps[2].expect[1]: unknown action 'plya' (did you mean 'play'?)"),
    (with_(steps=[{"event": "a", "expect": ["gather max=*"]}]),
     "f.json: steps[0].expect[0]: gather: max must be an integer 1..64, got '*'"),
    (with_(steps=[{"event": "a", "expect": {"match": "all", "actions": []}}]),
     "f.json: steps[0].expect.match: must be one of exact, prefix, subset, contains, got 'all'"),
    (with_(steps=[{"event": "a", "expect": {"match": "exact", "actions": ["gather mux=*"]}}]),
     "f.json: steps[0].expect.actions[0]: gather: unknown option 'mux' (options: max, min, "
     "timeout, digit_timeout, finish, prompt)"),
    (with_(steps=[{"event": "a", "expect": {"match": "exact", "actions": ["gather",
                                                                           "gather max=* min=y"]}}]),
     "f.json: steps[0].expect.actions[1]: gather: min must be an integer 1..64, got 'y'"),
    (with_(steps=[{"event": "a", "expect": {"match": "exact", "actions": ["set A=* b"]}}]),
     "f.json: steps[0].expect.actions[0]: set: expected NAME=VALUE, got 'b'"),
    (with_(steps=[{"event": "a", "expect": {"match": "exact", "actions": ["plya *"]}}]),
     "f.json: steps[0].expect.actions[0]: unknown action 'plya' (did you mean 'play'?)"),
    (with_(steps=[{"event": "a", "expect": [{"action": "play"}]}]),
     "f.json: steps[0].expect[0]: play: missing 'files'"),
    (with_(steps=[{"event": "a", "expect": [3]}]),
     "f.json: steps[0].expect[0]: must be an action line or object, got a number"),
])
def test_errors_name_the_file_and_the_place(obj: Any, message: str) -> None:
    with pytest.raises(FixtureError) as info:
        parse(obj)
    assert str(info.value) == message


def test_load_fixture_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"pbxcore_fixture": 1,\n "script": }')
    with pytest.raises(FixtureError, match=r"bad.json: line 2: invalid JSON: Expecting value"):
        load_fixture(bad)
    other = tmp_path / "other.json"
    other.write_text('{"name": "package.json"}')
    with pytest.raises(FixtureError, match="not a pbxcore fixture"):
        load_fixture(other)
    with pytest.raises(FixtureError, match="cannot read"):
        load_fixture(tmp_path / "missing.json")


def test_find_fixtures_walks_folders_and_skips_other_json(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for p in (tmp_path / "a" / "one.json", tmp_path / "a" / "b" / "two.json"):
        p.write_text(json.dumps(EXAMPLE))
    (tmp_path / "a" / "package.json").write_text("{}")
    (tmp_path / "a" / "broken.json").write_text("{")
    (tmp_path / "a" / "notes.txt").write_text(json.dumps(EXAMPLE))
    given = tmp_path / "given.json"
    assert find_fixtures([tmp_path / "a", given]) == [
        tmp_path / "a" / "b" / "two.json", tmp_path / "a" / "one.json", given]
