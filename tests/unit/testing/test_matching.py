"""Expected actions vs script output: parsed comparison, globs, list modes, the diff."""

from __future__ import annotations

import pytest

from pbxcore.script.actions import Action, parse_actions
from pbxcore.testing.matching import ExpectedAction, diff, expected_action, match_list, matches


def out(text: str) -> list[Action]:
    return parse_actions(text)


def exp(*lines: str, glob: bool = False) -> list[ExpectedAction]:
    return [expected_action(line, glob=glob) for line in lines]


@pytest.mark.parametrize(("expected", "printed"), [
    ("gather max=1 timeout=5 prompt=welcome", "gather  prompt='welcome'   max=1"),
    ("gather finish=#", 'gather finish="#"'),
    ("play a b loop=1", "play a b"),
    ("log 'two  spaces'", 'log "two  spaces"'),
    ("set A=1 B=2", "set B=2 A=1"),
    ("record beep=yes finish=#", "record"),
    ("wait 1.50", "wait 1.5"),
    ("gather max=4", '[{"action": "gather", "max": 4}]'),
])
def test_plain_lines_compare_as_parsed_actions(expected: str, printed: str) -> None:
    assert matches(expected_action(expected, glob=False), out(printed)[0])


@pytest.mark.parametrize(("expected", "printed"), [
    ("gather max=2", "gather max=1"),
    ("gather", "gather max=1"),
    ("play a b", "play b a"),
    ("set A=1", "set A=1 B=2"),
    ("say digits 12", "say number 12"),
])
def test_plain_lines_differ(expected: str, printed: str) -> None:
    assert not matches(expected_action(expected, glob=False), out(printed)[0])


def test_json_action_objects_as_expected() -> None:
    e = expected_action({"action": "play", "files": ["a"], "loop": 2}, glob=False)
    assert e.text == "play a loop=2" and matches(e, out("play a loop=2")[0])


@pytest.mark.parametrize(("pattern", "printed", "ok"), [
    ("play recording:*", "play recording:2026/11/22/x.wav", True),
    ("play recording:*", "play prompts/x", False),
    ("play recording:*", "play recording:a recording:b", False),  # one word per file
    ("play * *", "play a b", True),
    ("log call ended: *", "log 'call ended: caller 1001, tries 3'", True),
    ("log call ended: *", "log 'call started'", False),
    ("gather max=1 prompt=*", "gather max=1 prompt=menu", True),
    ("gather max=1 prompt=*", "gather max=1", True),  # * also matches "unset"
    ("gather prompt=*", "gather max=1 prompt=menu", False),  # max not mentioned: default
    ("gather max=* prompt=*", "gather max=1 prompt=menu", True),
    ("gather max=1 timeout=5 prompt=m*", "gather max=1 prompt=menu", True),
    ("gather max=1 timeout=4 prompt=m*", "gather max=1 prompt=menu", False),
    ("gather finish=* max=*", "gather max=3", True),
    ("set TRIES=* NAME=Al*", "set NAME=Alice TRIES=2", True),
    ("set TRIES=*", "set NAME=Alice TRIES=2", False),
    ("say digits *", "say digits 1001", True),
    ("say number *", "say digits 1001", False),
    ("goto sales/*", "goto sales/ivr.py", True),
    ("play [a]*", "play [a]b", True),  # only * is special
    ("play [a]*", "play ab", False),
])
def test_globs(pattern: str, printed: str, ok: bool) -> None:
    e = expected_action(pattern, glob=True)
    assert e.is_pattern and e.text == pattern
    assert matches(e, out(printed)[0]) is ok


def test_star_without_a_match_mode_is_literal() -> None:
    e = expected_action("play recording:*", glob=False)
    assert not e.is_pattern
    assert not matches(e, out("play recording:x")[0])
    assert matches(e, out("play 'recording:*'")[0])


ACTUAL = "answer\nset TRIES=1\nplay a\ngather max=1 prompt=menu"


@pytest.mark.parametrize(("mode", "lines", "ok"), [
    ("exact", ["answer", "set TRIES=1", "play a", "gather max=1 prompt=menu"], True),
    ("exact", ["answer", "set TRIES=1", "play a"], False),
    ("exact", ["set TRIES=1", "answer", "play a", "gather max=1 prompt=menu"], False),
    ("prefix", ["answer", "set TRIES=1"], True),
    ("prefix", ["set TRIES=1"], False),
    ("prefix", [], True),
    ("contains", ["set TRIES=1", "play a"], True),
    ("contains", ["answer", "play a"], False),
    ("contains", ["gather max=1 prompt=menu"], True),
    ("subset", ["play a", "answer"], True),
    ("subset", ["play a", "play a"], False),
    ("subset", ["play b"], False),
])
def test_list_modes(mode: str, lines: list[str], ok: bool) -> None:
    assert match_list(mode, exp(*lines, glob=True), out(ACTUAL)) is ok


def test_subset_assigns_each_expected_to_a_different_action() -> None:
    # greedy would give "play *" the first play and leave "play a" nothing
    assert match_list("subset", exp("play *", "play a", glob=True), out("play a\nplay b"))


def test_exact_diff_names_both_sides() -> None:
    rows = diff("exact", exp("answer", "set TRIES=2", "gather max=1 prompt=menu"),
                out("answer\nset TRIES=1\nplay x\ngather max=1 prompt=menu"))
    assert rows == ["  answer", "- set TRIES=2", "+ set TRIES=1", "+ play x",
                    "  gather max=1 prompt=menu"]


def test_prefix_diff_marks_only_the_prefix_region() -> None:
    rows = diff("prefix", exp("play your-numbr"), out("play your-number-is\nsay digits 1"))
    assert rows == ["- play your-numbr", "+ play your-number-is", "  say digits 1"]


def test_subset_diff_lists_what_is_missing() -> None:
    rows = diff("subset", exp("play a", "play z", glob=True), out("play a\nhangup"))
    assert rows == ["- play z", "  play a", "  hangup"]


def test_contains_diff_keeps_other_output_as_context() -> None:
    rows = diff("contains", exp("play z"), out("play a"))
    assert rows == ["- play z", "  play a"]
