"""`pbx replay` and `pbx simulate` in-process (CliRunner), on real script processes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner, Result

from pbxcore.cli.main import main
from pbxcore.testing.replay import replay_file
from pbxcore.testing.report import failure_text
from tests.unit.testing.conftest import Writer

REPO = Path(__file__).resolve().parents[3]
IVR = REPO / "scripts" / "ivr.py"
MENU = "gather max=1 prompt=menu"  # as printed back (timeout=5 is the default)


def pbx(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=input,
                              env={"COLUMNS": "200"})


def fixtures(script: Writer, fixture_file: Writer) -> tuple[Path, Path]:
    script("s.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo "play hello";;\n'
                   '  *) echo "echo $PBX_EVENT" >&2; exit 4;; esac\n')
    good = fixture_file("suite/good.json", "../s.sh", name="good call", steps=[
        {"event": "incoming", "expect": ["answer", "play hello"]}])
    bad = fixture_file("suite/deeper/bad.json", "../../s.sh", name="bad call", steps=[
        {"event": "incoming", "expect": ["answer", "play goodbye"]},
        {"event": "hangup", "expect": []}])
    (good.parent / "package.json").write_text('{"name": "not a fixture"}')
    return good, bad


def test_replay_passes_and_fails_with_a_diff(script: Writer, fixture_file: Writer) -> None:
    good, bad = fixtures(script, fixture_file)
    ok = pbx("replay", good)
    assert ok.exit_code == 0, ok.output
    assert "PASS good call" in ok.output and "1 of 1 fixtures passed" in ok.output
    res = pbx("replay", good.parent)  # a folder: both fixtures, package.json ignored
    assert res.exit_code == 1
    assert "PASS good call" in res.output and "FAIL bad call" in res.output
    assert "- play goodbye" in res.output and "+ play hello" in res.output
    assert "--- expected" in res.output and "+++ actual (script output)" in res.output
    assert "script error: exit status 4" in res.output and "echo hangup" in res.output
    assert "1 of 2 fixtures passed" in res.output


def test_replay_json_and_junit(script: Writer, fixture_file: Writer, tmp_path: Path) -> None:
    good, bad = fixtures(script, fixture_file)
    junit = tmp_path / "junit.xml"
    res = pbx("replay", "--json", "--junit", junit, good, bad)
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert data["passed"] is False
    assert [f["passed"] for f in data["fixtures"]] == [True, False]
    step = data["fixtures"][1]["steps"][0]
    assert step["actions"] == ["answer", "play hello"]
    assert step["diff"] == ["  answer", "- play goodbye", "+ play hello"]
    assert data["fixtures"][1]["steps"][1]["error"] == "exit status 4"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["good call", "bad call"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message") == "steps[0] incoming: the actions differ (match: exact)"
    assert "- play goodbye\n+ play hello" in failure.text


def test_replay_reports_invalid_fixtures_and_needs_some(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"pbxcore_fixture": 1, "script": "x.sh", "steps": [{"event": "a", '
                   '"expect": ["plya"]}]}')
    res = pbx("replay", bad)
    assert res.exit_code == 1
    assert "steps[0].expect[0]: unknown action 'plya'" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = pbx("replay", empty)
    assert res.exit_code == 2 and "no fixtures found" in res.output


def test_replay_transport_option(script: Writer, fixture_file: Writer) -> None:
    good, _ = fixtures(script, fixture_file)
    res = pbx("replay", "--transport", "webhook", good)
    assert res.exit_code == 1 and "the webhook transport needs a URL" in res.output
    res = pbx("replay", "--transport", "process", good)
    assert res.exit_code == 0


def test_simulate_every_outcome_and_save(tmp_path: Path) -> None:
    saved = tmp_path / "sim.json"
    # welcome: 2 (record) -> finishkey, 4 s -> menu: 9 (invalid) -> timeout -> h (hang up)
    res = pbx("simulate", IVR, "--caller", "1001", "--called", "100", "--save", saved,
              input="2\nfinishkey\n4\n9\n\nh\n")
    assert res.exit_code == 0, res.output
    out = res.output
    assert "event  incoming" in out and "→ gather max=1 prompt=welcome" in out
    assert "record result=finishkey recording=simulated/simulated-1.wav" in out
    assert "→ play recording:simulated/simulated-1.wav" in out
    assert "gather result=timeout" in out and "→ set TRIES=3" in out
    assert "hangup result=caller" in out and "call ended: caller 1001, tries 3" in out
    fixture = json.loads(saved.read_text())
    assert [s["event"] for s in fixture["steps"]] == [
        "incoming", "gather", "record", "gather", "gather", "hangup"]
    assert fixture["steps"][2]["extra"] == {"recording_seconds": "4.0"}
    assert fixture["steps"][4]["expect"] == ["play invalid", "set TRIES=3", MENU]
    result = replay_file(saved)
    assert result.passed, failure_text(result)


def test_simulate_end_of_input_is_the_caller_hanging_up(tmp_path: Path) -> None:
    saved = tmp_path / "sim.json"
    res = pbx("simulate", IVR, "--caller", "1001", "--called", "100", "--save", saved,
              input="2\n")  # presses 2, then the input ends at the record question
    assert res.exit_code == 0, res.output
    assert "Aborted" not in res.output and "end of input: the caller hangs up" in res.output
    assert "hangup result=caller" in res.output
    fixture = json.loads(saved.read_text())
    # hanging up during a record still ends the recording first, as on a live call
    assert [s["event"] for s in fixture["steps"]] == ["incoming", "gather", "record", "hangup"]
    assert replay_file(saved).passed


def test_simulate_end_of_list_and_errors(script: Writer, tmp_path: Path) -> None:
    s = script("s.sh", 'case "$PBX_EVENT" in incoming) echo "gather max=2 min=2 finish=#";;\n'
                       '  gather) echo "log $PBX_RESULT $PBX_DIGITS"; echo "reject busy";;\n'
                       '  hangup) echo oops >&2; exit 2;; esac\n')
    res = pbx("simulate", s, "--caller", "1", "--called", "2", input="1#9\n")
    assert res.exit_code == 0, res.output
    assert "gather result=short digits=1" in res.output  # finish key ends input, min=2
    assert "→ log 'short 1'" in res.output and "→ reject busy" in res.output
    assert "hangup result=script hangup_cause=rejected with 486" in res.output
    assert "script error: exit status 2" in res.output and "oops" in res.output


def test_simulate_follows_goto(script: Writer) -> None:
    a = script("a.sh", 'case "$PBX_EVENT" in incoming) echo "goto b.sh";; esac\n')
    script("b.sh", 'case "$PBX_EVENT" in redirect) echo "log from $PBX_RESULT";;\n'
                   '  hangup) echo "log b hangup";; esac\n')
    res = pbx("simulate", a, "--caller", "1", "--called", "2")
    assert res.exit_code == 0, res.output
    assert "goto: a.sh hands the call to b.sh" in res.output
    assert "event  redirect result=a.sh" in res.output and "→ log 'from a.sh'" in res.output
    assert "→ log 'b hangup'" in res.output


QUEUE_SCRIPT = '''case "$PBX_EVENT" in
  incoming) echo "queue support exit_key=0 priority=5";;
  queue) echo "log left $PBX_RESULT key=$PBX_DIGITS q=$PBX_QUEUE wait=$PBX_QUEUE_WAIT"; echo hangup;;
  hangup) echo "log end q=$PBX_QUEUE agent=$PBX_AGENT pos=$PBX_QUEUE_POSITION";;
esac
'''


def test_simulate_queue_left_by_exit_key_and_replay(script: Writer, tmp_path: Path) -> None:
    s = script("q.sh", QUEUE_SCRIPT)
    saved = tmp_path / "queue.json"
    # bogus answer is asked again; exit_key after 42 s at position 3, key 0
    res = pbx("simulate", s, "--caller", "1", "--called", "2", "--save", saved,
              input="bogus\nexit_key\n42\n3\n0\n")
    assert res.exit_code == 0, res.output
    assert "event  queue result=exit_key digits=0 queue=support queue_wait=42.000 " \
        "queue_position=3 agent=" in res.output
    assert "→ log 'left exit_key key=0 q=support wait=42.000'" in res.output
    assert "→ log 'end q=support agent= pos=3'" in res.output  # carried to the hangup
    fixture = json.loads(saved.read_text())
    assert [(st["event"], st.get("result")) for st in fixture["steps"]] == [
        ("incoming", None), ("queue", "exit_key"), ("hangup", "script")]
    result = replay_file(saved)
    assert result.passed, failure_text(result)


def test_simulate_queue_left_for_a_callback(script: Writer) -> None:
    s = script("q.sh", QUEUE_SCRIPT)
    res = pbx("simulate", s, "--caller", "5550100", "--called", "2",
              input="callback\n30\n2\n\n")  # Enter: the caller's own number
    assert res.exit_code == 0, res.output
    assert "event  queue result=callback queue=support queue_wait=30.000 queue_position=2 " \
        "agent= callback_number=5550100" in res.output


def test_simulate_queue_answered_by_an_agent(script: Writer) -> None:
    s = script("q.sh", QUEUE_SCRIPT)
    res = pbx("simulate", s, "--caller", "1", "--called", "2",
              input="answered\n7.5\n1\n1004\ncallee\n61\n")
    assert res.exit_code == 0, res.output
    assert "event  hangup result=callee" in res.output and "talk_seconds=61.000" in res.output
    assert "→ log 'end q=support agent=1004 pos=1'" in res.output
    assert "event  queue" not in res.output  # bridged: no queue event


def test_simulate_queue_full_and_caller_hangs_up(script: Writer) -> None:
    s = script("q.sh", QUEUE_SCRIPT)
    res = pbx("simulate", s, "--caller", "1", "--called", "2", input="full\n\n")
    assert res.exit_code == 0, res.output
    assert "event  queue result=full queue=support queue_wait=0.000 queue_position=0" \
        in res.output
    res = pbx("simulate", s, "--caller", "1", "--called", "2", input="h\n20\n2\n")
    assert "event  hangup result=caller" in res.output and "queue_wait=20.000" in res.output
    # h at the later questions is the caller hanging up too (never a question asked forever)
    res = pbx("simulate", s, "--caller", "1", "--called", "2",
              input="answered\n5\n1\n1002\nh\n3\n")
    assert res.exit_code == 0 and "event  hangup result=caller" in res.output
    res = pbx("simulate", s, "--caller", "1", "--called", "2", input="exit_key\n5\n1\nh\n")
    assert res.exit_code == 0 and "event  queue" not in res.output
    assert "event  hangup result=caller" in res.output


def test_replay_carries_the_queue_fields_of_a_fixture(script: Writer,
                                                      fixture_file: Writer) -> None:
    script("q.sh", QUEUE_SCRIPT)
    visit = {"queue": "support", "queue_wait": "30.000", "queue_position": "2", "agent": ""}
    f = fixture_file("timeout.json", "q.sh", steps=[
        {"event": "incoming", "expect": ["queue support priority=5 exit_key=0"]},
        {"event": "queue", "result": "timeout", "extra": visit,
         "expect": ["log 'left timeout key= q=support wait=30.000'", "hangup"]},
        {"event": "hangup", "result": "script",
         "expect": ["log 'end q=support agent= pos=2'"]}])
    result = replay_file(f)
    assert result.passed, failure_text(result)


CONFERENCE_SCRIPT = '''case "$PBX_EVENT" in
  incoming) echo "conference standup max=10";;
  conference) echo "log not in $PBX_RESULT"; echo hangup;;
  hangup) echo "log end $PBX_CONFERENCE $PBX_CONFERENCE_RESULT $PBX_CONFERENCE_SECONDS";;
esac
'''


def test_simulate_conference_kicked_full_and_replay(script: Writer, tmp_path: Path) -> None:
    s = script("c.sh", CONFERENCE_SCRIPT)
    saved = tmp_path / "conference.json"
    res = pbx("simulate", s, "--caller", "1", "--called", "2", "--save", saved,
              input="kicked\n600\n")
    assert res.exit_code == 0, res.output
    assert "event  hangup result=switch" in res.output
    assert "→ log 'end standup kicked 600.000'" in res.output
    assert replay_file(saved).passed
    res = pbx("simulate", s, "--caller", "1", "--called", "2", input="full\n")
    assert "event  conference result=full" in res.output and "→ log 'not in full'" in res.output
    res = pbx("simulate", s, "--caller", "1", "--called", "2", input="h\n5\n")
    assert "→ log 'end standup left 5.000'" in res.output
