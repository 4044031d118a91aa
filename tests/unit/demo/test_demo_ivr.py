"""The demo scripts: ivr.py and ivr.sh print the exact same actions per event; say-number.sh.

Each script runs as a real subprocess the way the switch runs it: exec'd directly (shebang), a
minimal environment holding only the PBX_* variables, and the event as JSON on stdin.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxcore.script.actions import Play, parse_actions
from pbxcore.script.paths import resolve_sound

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "scripts"
SOUNDS = ROOT / "sounds"

# How each script is started: by its own shebang, plus ivr.sh under bash (its shebang is
# /bin/sh, which is dash on Debian) to prove it is plain POSIX.
RUNNERS = {
    "ivr.py": [str(SCRIPTS / "ivr.py")],
    "ivr.sh": [str(SCRIPTS / "ivr.sh")],
    "ivr.sh-bash": ["/bin/bash", str(SCRIPTS / "ivr.sh")],
}
COMMANDS = {**RUNNERS, "say-number.sh": [str(SCRIPTS / "say-number.sh")]}

MENU = "gather max=1 timeout=5 prompt=menu"
WELCOME = "gather max=1 timeout=5 prompt=welcome"
RECORD = 'record max=30 beep=yes finish="#" silence=3'


def run(runner: str, event: str, **env: str) -> list[str]:
    """Run one script for one event; returns its stdout lines."""
    environ = {"PBX_PROTOCOL": "1", "PBX_EVENT": event, "PBX_CALL_ID": "c1",
               "PBX_CALLER": "1001", "PBX_CALLER_NAME": "Alice", "PBX_CALLED": "100",
               "PBX_LANGUAGE": "en", **env}
    stdin = json.dumps({"event": event, **{k.lower(): v for k, v in environ.items()}})
    done = subprocess.run(COMMANDS[runner], env=environ, input=stdin, capture_output=True,
                          text=True, timeout=10, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.splitlines()


# (case id, event, env, exact expected actions)
CASES = [
    ("incoming", "incoming", {}, ["answer", "set TRIES=1", WELCOME]),
    ("redirect", "redirect", {}, ["answer", "set TRIES=1", WELCOME]),
    ("1-your-number", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "1"},
     ["play your-number-is", "say digits 1001", "set TRIES=1", MENU]),
    ("1-caller-cleaned", "gather",
     {"PBX_RESULT": "ok", "PBX_DIGITS": "1", "PBX_CALLER": "+7 (495) 12-34"},
     ["play your-number-is", "say digits 74951234", "set TRIES=1", MENU]),
    ("1-anonymous", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "1", "PBX_CALLER": "anonymous"},
     ["play your-number-is", "set TRIES=1", MENU]),
    ("2-record", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "2", "PBX_VAR_TRIES": "2"},
     ["play record-after-beep", "set TRIES=1", RECORD]),
    ("3-hours", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "3"},
     ["play hours", "set TRIES=1", MENU]),
    ("invalid-try-1", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "9", "PBX_VAR_TRIES": "1"},
     ["play invalid", "set TRIES=2", MENU]),
    ("invalid-try-2", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "#", "PBX_VAR_TRIES": "2"},
     ["play invalid", "set TRIES=3", MENU]),
    ("invalid-try-3-goodbye", "gather",
     {"PBX_RESULT": "ok", "PBX_DIGITS": "12", "PBX_VAR_TRIES": "3"},
     ["play invalid", "play goodbye", "hangup"]),
    ("timeout", "gather", {"PBX_RESULT": "timeout", "PBX_DIGITS": "", "PBX_VAR_TRIES": "1"},
     ["play invalid", "set TRIES=2", MENU]),
    ("timeout-ignores-partial-digits", "gather",
     {"PBX_RESULT": "timeout", "PBX_DIGITS": "1", "PBX_VAR_TRIES": "1"},
     ["play invalid", "set TRIES=2", MENU]),
    ("timeout-try-3-goodbye", "gather", {"PBX_RESULT": "timeout", "PBX_VAR_TRIES": "3"},
     ["play invalid", "play goodbye", "hangup"]),
    ("tries-missing", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "0"},
     ["play invalid", "set TRIES=2", MENU]),
    ("tries-octal-looking", "gather",
     {"PBX_RESULT": "ok", "PBX_DIGITS": "0", "PBX_VAR_TRIES": "010"},
     ["play invalid", "set TRIES=2", MENU]),
    ("record-ok", "record", {"PBX_RESULT": "finishkey", "PBX_RECORDING": "2026/11/22/abc.wav"},
     ["play you-said", "play recording:2026/11/22/abc.wav", MENU]),
    ("record-silence", "record", {"PBX_RESULT": "silence", "PBX_RECORDING": "r/c1-1.wav"},
     ["play you-said", "play recording:r/c1-1.wav", MENU]),
    ("record-nothing", "record", {"PBX_RESULT": "silence", "PBX_RECORDING": ""}, [MENU]),
    ("record-odd-path", "record", {"PBX_RESULT": "ok", "PBX_RECORDING": "a b;hangup.wav"},
     [MENU]),
    ("hangup", "hangup", {"PBX_VAR_TRIES": "2"}, ["log call ended: caller 1001, tries 2"]),
    ("hangup-odd-caller", "hangup", {"PBX_CALLER": "<sip:x y>\"#"},
     ["log call ended: caller sipxy, tries 1"]),
    ("unknown-event", "dial", {}, ["log ivr: unexpected event dial", "hangup"]),
]


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize(("event", "env", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_each_branch_prints_exact_actions(runner: str, event: str, env: dict[str, str],
                                          expected: list[str]) -> None:
    assert run(runner, event, **env) == expected


def test_every_line_survives_the_action_lexer() -> None:
    # The action grammar is shell-like with '#' comments: quoting must keep finish=# intact.
    for *_, expected in CASES:
        for line in expected:
            words = shlex.split(line, comments=True)
            assert words and words[0] in {"answer", "set", "gather", "play", "say", "record",
                                          "hangup", "log"}
    assert shlex.split(RECORD, comments=True)[3] == "finish=#"


class Switch:
    """Just enough of the switch to walk a call: carries `set` variables between events."""

    def __init__(self, runner: str) -> None:
        self.runner, self.caller = runner, "1002"
        self.vars: dict[str, str] = {}

    def event(self, event: str, **env: str) -> list[str]:
        variables = {f"PBX_VAR_{k}": v for k, v in self.vars.items()}
        actions = run(self.runner, event, PBX_CALLER=self.caller, **variables, **env)
        for line in actions:
            if line.startswith("set "):
                name, _, value = line[4:].partition("=")
                self.vars[name] = value
        return actions


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_three_wrong_keys_in_a_row_say_goodbye(runner: str) -> None:
    switch = Switch(runner)
    assert switch.event("incoming")[-1] == WELCOME
    assert switch.event("gather", PBX_RESULT="ok", PBX_DIGITS="7")[-1] == MENU
    assert switch.event("gather", PBX_RESULT="timeout", PBX_DIGITS="")[-1] == MENU
    assert switch.event("gather", PBX_RESULT="ok", PBX_DIGITS="*") == [
        "play invalid", "play goodbye", "hangup"]
    assert switch.event("hangup") == ["log call ended: caller 1002, tries 3"]


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_a_valid_choice_resets_the_tries(runner: str) -> None:
    switch = Switch(runner)
    switch.event("incoming")
    switch.event("gather", PBX_RESULT="ok", PBX_DIGITS="5")
    switch.event("gather", PBX_RESULT="ok", PBX_DIGITS="5")
    assert switch.vars["TRIES"] == "3"
    assert switch.event("gather", PBX_RESULT="ok", PBX_DIGITS="3") == [
        "play hours", "set TRIES=1", MENU]
    assert switch.event("gather", PBX_RESULT="ok", PBX_DIGITS="5")[-1] == MENU  # not goodbye
    assert switch.event("gather", PBX_RESULT="ok", PBX_DIGITS="2")[-1] == RECORD
    assert switch.event("record", PBX_RESULT="finishkey", PBX_RECORDING="x/y.wav") == [
        "play you-said", "play recording:x/y.wav", MENU]


# Environment values as the switch passes them: no control characters (it sanitises them).
_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
_digits = st.one_of(st.sampled_from(["", "1", "2", "3", "0", "#", "*", "12"]), _text)
_tries = st.one_of(st.sampled_from(["1", "2", "3", "4", "999", "1000", "010", "0", "-1"]), _text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(["incoming", "gather", "record", "hangup", "redirect", "x"]),
       result=st.sampled_from(["ok", "timeout", "silence", "finishkey", ""]),
       digits=_digits, caller=_text, tries=_tries,
       recording=st.one_of(st.sampled_from(["2026/11/22/a.wav", ""]), _text))
def test_python_and_shell_agree_on_any_input(event: str, result: str, digits: str, caller: str,
                                             tries: str, recording: str) -> None:
    env = {"PBX_RESULT": result, "PBX_DIGITS": digits, "PBX_CALLER": caller,
           "PBX_VAR_TRIES": tries, "PBX_RECORDING": recording}
    outputs = {runner: run(runner, event, **env) for runner in RUNNERS}
    assert outputs["ivr.py"] == outputs["ivr.sh"] == outputs["ivr.sh-bash"]
    parse_actions("\n".join(outputs["ivr.py"]))  # and the switch accepts whatever it is


@pytest.mark.parametrize("runner", sorted(COMMANDS))
def test_the_switch_parser_accepts_every_output(runner: str) -> None:
    cases = SAY_CASES if runner == "say-number.sh" else CASES
    for _, event, env, _ in cases:
        actions = parse_actions("\n".join(run(runner, event, **env)))
        # Only the last action may have an outcome (parse_actions enforces the rest).
        assert all(not a.has_outcome for a in actions[:-1])
        for action in actions:
            if isinstance(action, Play):
                for name in action.files:
                    if not name.startswith("recording:"):
                        for lang in ("en", "ru"):
                            assert Path(resolve_sound(name, SOUNDS, lang)).is_file()


SAY = 'gather max=6 timeout=10 digit_timeout=3 finish="#" prompt=beep'
SAY_CASES = [
    ("incoming", "incoming", {}, ["answer", SAY]),
    ("number", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "1250"}, ["say number 1250", SAY]),
    ("finish-key-only", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": ""},
     ["play goodbye", "hangup"]),
    ("star", "gather", {"PBX_RESULT": "ok", "PBX_DIGITS": "12*"}, ["play goodbye", "hangup"]),
    ("hangup", "hangup", {}, []),
]


@pytest.mark.parametrize(("event", "env", "expected"), [c[1:] for c in SAY_CASES],
                         ids=[c[0] for c in SAY_CASES])
def test_say_number_example(event: str, env: dict[str, str], expected: list[str]) -> None:
    assert run("say-number.sh", event, **env) == expected


def _referenced_by_scripts() -> set[str]:
    """Every sound the demo scripts play, from their actual output on every branch."""
    files: set[str] = set()
    runs = [(r, c) for r in RUNNERS for c in CASES] + [("say-number.sh", c) for c in SAY_CASES]
    for runner, (_, event, env, _) in runs:
        for line in run(runner, event, **env):
            verb, *args = line.split()
            if verb == "play":
                files.update(a for a in args if not a.startswith("recording:"))
            files.update(a[len("prompt="):] for a in args if a.startswith("prompt="))
    return files


def test_every_sound_the_scripts_and_fallbacks_use_exists_in_every_language() -> None:
    used = _referenced_by_scripts()
    assert {"welcome", "menu", "hours", "invalid", "goodbye", "you-said", "beep"} <= used
    config = tomllib.loads((ROOT / "examples/demo/pbx.toml").read_text(encoding="utf-8"))
    for route in config["routes"]:
        for line in route["fallback"]:
            verb, *args = line.split()
            if verb == "play":
                used.update(args)
    assert "sorry" in used
    for lang in ("en", "ru"):
        missing = sorted(f for f in used if not (SOUNDS / lang / f"{f}.wav").is_file())
        assert missing == [], lang
