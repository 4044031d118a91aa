"""[[queues]], [agents] and the route's agent_control in pbx.toml: values, defaults, FILE:LINE
problems, warnings, and what a reload reports about the queues."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pbxcore.acd.spec import AlertThresholds, Member, OverflowRule
from pbxcore.cli.main import main
from pbxcore.config import ConfigError, load_config
from pbxcore.config_queues import AgentsConfig, parse_announce, queue_changes

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "pbx.toml").read_text()

QUEUES = """
[[queues]]
name = "support"
strategy = "round-robin"
members = ["1001", "1002:2"]
ring_timeout = 20
retry = 3
wrapup = 10.5
max_wait = 300
max_len = 20
empty = "leave"
hold_music = "moh"
announce_every = 45
announce = "position"
service_level = 30
autopause_after = 3
overflow = [{after = 30, tier = 2}, {after = 90, tier = 3}]
alert_waiting = 5
alert_longest_wait = 120
alert_clear = 0.5
alert = "scripts/ivr.py"
whisper = "moh"
callback_key = "*"

[[queues]]
name = "sales"
"""


def write(site: Path, text: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [(line, reason) for _, line, reason in info.value.problems]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    return [no for no, line in enumerate(text.splitlines(), 1) if needle in line][nth - 1]


def test_every_queue_key_is_read(site: Path) -> None:
    cfg = load_config(write(site, VALID + QUEUES))
    support = cfg.queue("support")
    assert support is not None and cfg.queue("nope") is None
    assert support.strategy == "round-robin"
    assert support.members == (Member("1001", 1), Member("1002", 2))
    assert (support.ring_timeout, support.retry, support.wrapup) == (20.0, 3.0, 10.5)
    assert (support.max_wait, support.max_len, support.empty) == (300.0, 20, "leave")
    assert (support.hold_music, support.announce_every, support.announce) == (
        "moh", 45.0, ("position",))
    assert (support.service_level, support.autopause_after) == (30.0, 3)
    assert support.overflow == (OverflowRule(30.0, 2), OverflowRule(90.0, 3))
    assert support.alert == AlertThresholds(waiting=5, longest_wait=120.0, clear_ratio=0.5)
    assert support.alert_program == str(site / "scripts" / "ivr.py")
    assert (support.whisper, support.callback_key) == ("moh", "*")
    assert cfg.warnings == ()


def test_queue_defaults_are_the_specs(site: Path) -> None:
    cfg = load_config(write(site, VALID + QUEUES))
    sales = cfg.queue("sales")
    assert sales is not None
    assert (sales.strategy, sales.members, sales.ring_timeout, sales.retry, sales.wrapup) == (
        "longest-idle", (), 15.0, 5.0, 0.0)
    assert (sales.max_wait, sales.max_len, sales.empty, sales.hold_music) == (
        None, None, "join", "moh")
    assert (sales.announce_every, sales.announce, sales.service_level) == (
        None, ("position", "wait"), 20.0)
    assert (sales.autopause_after, sales.overflow, sales.alert_program) == (0, (), None)
    assert sales.alert == AlertThresholds()
    assert [q.name for q in cfg.queues] == ["support", "sales"]


def test_queue_problems_point_at_their_lines(site: Path) -> None:
    text = VALID + """
[[queues]]
name = "bad"
strategy = "leastrecent"
members = ["1001", "1009", "1002:0", "1001:2", 1003]
ring_timeout = 0
retry = -1
max_len = 0
empty = "stay"
announce = "position,weather"
overflow = [{after = 30, tier = 0}, {after = -5, tier = 2}, {after = 10, tier = 2, x = 1}]
callback_key = "##"
hold_music = "no-such-prompt"
colour = "red"

[[queues]]
name = "bad"
whisper = "../etc/passwd"
"""
    got = problems(write(site, text))
    strategies = "ringall, longest-idle, round-robin, fewest-calls, linear, random"
    members = line_of(text, "members =")
    overflow = line_of(text, "overflow =")
    assert got == [
        (line_of(text, "colour"), "unknown key 'colour' in [[queues]] #1"),
        (line_of(text, "strategy ="), f"strategy 'leastrecent' in [[queues]] #1 must be one "
                                      f"of {strategies}"),
        (members, "member '1009' in [[queues]] #1 is not a [[users]] extension"),
        (members, "member '1002:0' in [[queues]] #1: tier must be 1 or more"),
        (members, "member '1001' is listed twice in [[queues]] #1"),
        (members, "member 1003 in [[queues]] #1 must be \"EXT\" or \"EXT:TIER\" (a quoted "
                  "extension, optional tier 1..999)"),
        (line_of(text, "ring_timeout"),
         "ring_timeout 0 in [[queues]] #1 must be more than 0 seconds (at most 86400)"),
        (line_of(text, "retry"), "retry -1 in [[queues]] #1 must be 0 or more seconds "
                                 "(at most 86400)"),
        (line_of(text, "max_len"), "max_len 0 in [[queues]] #1 must be 1..100000"),
        (line_of(text, "empty ="), "empty 'stay' in [[queues]] #1 must be join or leave"),
        (line_of(text, "no-such-prompt"),
         f"hold_music 'no-such-prompt' in [[queues]] #1: no no-such-prompt.wav under "
         f"{site / 'sounds'}"),
        (line_of(text, "announce ="), "announce 'position,weather' in [[queues]] #1 must be "
                                      "position,wait, position, wait or none"),
        (overflow, "overflow tier 0 in [[queues]] #1 must be an integer of 1 or more"),
        (overflow, "overflow after -5 in [[queues]] #1 must be 0..86400 seconds"),
        (overflow, "overflow rule {'after': 10, 'tier': 2, 'x': 1} in [[queues]] #1 must be "
                   "{after = SECONDS, tier = N}"),
        (line_of(text, "callback_key"),
         "callback_key '##' in [[queues]] #1 must be one DTMF key 0-9 * #"),
        (line_of(text, "whisper"),
         "whisper '../etc/passwd' in [[queues]] #2 must name a sound under sounds/"),
    ]


def test_duplicate_names_and_missing_name(site: Path) -> None:
    text = VALID + '\n[[queues]]\nname = "a"\n\n[[queues]]\nname = "a"\n\n[[queues]]\n' \
        'strategy = "linear"\n'
    assert problems(write(site, text)) == [
        (line_of(text, 'name = "a"', 2), "duplicate queue name 'a' in [[queues]] #2"),
        (line_of(text, "[[queues]]", 3),
         '[[queues]] #3 needs name = "NAME" (1..32 letters, digits, _ or -)'),
    ]


def test_overflow_rules_must_go_up(site: Path) -> None:
    text = VALID + '\n[[queues]]\nname = "q"\noverflow = [{after = 60, tier = 3}, ' \
        '{after = 30, tier = 4}]\n'
    assert problems(write(site, text)) == [
        (line_of(text, "overflow"), "overflow rules in [[queues]] #1 must go up: after and "
                                    "tier both larger than the rule before (30, 4)")]


def test_negative_times_and_bool_numbers(site: Path) -> None:
    text = VALID + '\n[[queues]]\nname = "q"\nwrapup = -2\nmax_wait = true\n' \
        'alert_longest_wait = -1\nalert_clear = 1.5\n'
    assert problems(write(site, text)) == [
        (line_of(text, "wrapup"), "wrapup -2 in [[queues]] #1 must be 0 or more seconds "
                                  "(at most 86400)"),
        (line_of(text, "max_wait"), "max_wait in [[queues]] #1 must be a number"),
        (line_of(text, "alert_longest_wait"), "alert_longest_wait -1 in [[queues]] #1 must be "
                                              "more than 0 seconds (at most 86400)"),
        (line_of(text, "alert_clear"), "alert_clear 1.5 in [[queues]] #1 must be more than 0 "
                                       "and at most 1"),
    ]


def test_alert_program_problems_are_warnings(site: Path) -> None:
    (site / "scripts" / "notify.sh").write_text("#!/bin/sh\n")  # not executable
    text = VALID + """
[[queues]]
name = "a"
alert = "scripts/missing.sh"
alert_waiting = 3

[[queues]]
name = "b"
alert = "scripts/notify.sh"
alert_longest_wait = 60

[[queues]]
name = "c"
alert = "scripts/ivr.py"
"""
    cfg = load_config(write(site, text))  # loads: warnings do not stop the switch
    assert [(line, reason) for _, line, reason in cfg.warnings] == [
        (line_of(text, "missing.sh"), "alert program scripts/missing.sh does not exist: "
                                      "queue_alert events of [[queues]] #1 cannot be sent"),
        (line_of(text, "notify.sh"), "alert program scripts/notify.sh is not executable "
                                     "(chmod +x): queue_alert events of [[queues]] #2 cannot "
                                     "be sent"),
        (line_of(text, "scripts/ivr.py", 3), "alert program in [[queues]] #3 never runs: set "
                                             "alert_waiting or alert_longest_wait"),
    ]
    result = CliRunner().invoke(main, ["check", "--config", str(site / "pbx.toml")])
    assert result.exit_code == 0
    assert result.stdout == "config OK: 2 routes, 2 users, 3 queues, 3 warnings\n"
    assert f"{site / 'pbx.toml'}:{line_of(text, 'missing.sh')}: warning: alert program " \
        "scripts/missing.sh does not exist" in result.stderr


@pytest.mark.parametrize(("text", "words"), [
    ("position,wait", ("position", "wait")), ("wait,position", None),
    ("position", ("position",)), ("wait", ("wait",)), ("none", ()),
    ("", None), ("position,position", None), ("Position", None), ("position, wait", None),
])
def test_announce_words(text: str, words: tuple[str, ...] | None) -> None:
    assert parse_announce(text) == words


def test_agents_defaults_and_feature_codes(site: Path) -> None:
    cfg = load_config(write(site, VALID))
    assert cfg.agents == AgentsConfig()
    assert cfg.agents.codes() == ("*71", "*72", "*73", "*74")
    agents = load_config(write(site, VALID + """
[agents]
login_code = "*51"
logout_code = ""
pause_reasons = {"1" = "lunch", "22" = "training"}
""")).agents
    assert agents.feature("*51") == ("login", None)
    assert agents.feature("*72") is None  # the default code is replaced by "" = off
    assert agents.feature("*73") == ("pause", None)
    assert agents.feature("*731") == ("pause", "lunch")
    assert agents.feature("*7322") == ("pause", "training")
    assert agents.feature("*739") == ("pause", "9")  # an unnamed reason is its digits
    assert agents.feature("*73#") is None and agents.feature("*74") == ("unpause", None)
    assert agents.feature("*7") is None and agents.feature("1001") is None


def test_agents_problems(site: Path) -> None:
    text = VALID + """
[agents]
login_code = "*7"
pause_code = "*73x"
unpause_code = "*74"
logout_code = "*741"
pause_reasons = {"a" = "lunch", "2" = "two words"}
loginn = "*1"
"""
    assert problems(write(site, text)) == [
        (line_of(text, "loginn"), "unknown key 'loginn' in [agents]; did you mean 'login_code'?"),
        (line_of(text, "logout_code"), "logout_code '*741' and login_code '*7' in [agents]: "
                                       "one code must not begin with another"),
        (line_of(text, "pause_code"), "pause_code '*73x' in [agents] must be 1..16 keys 0-9 * "
                                      "# (or \"\" to switch it off)"),
        (line_of(text, "unpause_code"), "unpause_code '*74' and login_code '*7' in [agents]: "
                                        "one code must not begin with another"),
        (line_of(text, "unpause_code"), "unpause_code '*74' and logout_code '*741' in "
                                        "[agents]: one code must not begin with another"),
        (line_of(text, "pause_reasons"), "pause_reasons a = 'lunch' in [agents]: keys are "
                                         "digits, values reason names (letters, digits, _ or -)"),
        (line_of(text, "pause_reasons"), "pause_reasons 2 = 'two words' in [agents]: keys are "
                                         "digits, values reason names (letters, digits, _ or -)"),
    ]


def test_agent_control_route_permission(site: Path) -> None:
    text = VALID.replace('hangup_event = false', 'hangup_event = false\nagent_control = true')
    cfg = load_config(write(site, text))
    assert [r.agent_control for r in cfg.routes] == [False, True]
    bad = VALID.replace('hangup_event = false', 'hangup_event = false\nagent_control = "yes"')
    assert problems(write(site, bad)) == [
        (line_of(bad, "agent_control"), "agent_control in [[routes]] #2 must be true or false")]


def test_queue_changes_name_what_a_reload_changes(site: Path) -> None:
    old = load_config(write(site, VALID + QUEUES)).queues
    text = (VALID + QUEUES).replace('members = ["1001", "1002:2"]', 'members = ["1002:1"]')
    text = text.replace("wrapup = 10.5", "wrapup = 5").replace('name = "sales"', 'name = "vip"')
    new = load_config(write(site, text)).queues
    assert queue_changes(old, new) == [
        "queue vip: added",
        "queue sales: removed (callers waiting in it keep waiting until they leave)",
        "queue support: changed -1001, 1002 tier 2->1, wrapup",
    ]
    assert queue_changes(new, new) == []


def test_every_queue_and_agent_key_is_documented() -> None:
    from pbxcore.config_queues import AGENT_KEYS, QUEUE_KEYS

    doc = (Path(__file__).parents[3] / "docs" / "configuration.md").read_text()
    for key in sorted(QUEUE_KEYS | AGENT_KEYS | {"agent_control"}):
        assert f"| `{key}` |" in doc, key


def test_callback_keys_are_read_and_checked(site: Path) -> None:
    text = VALID + """
[[queues]]
name = "back"
callback_key = "5"
callback_retries = 0
callback_retry_delay = 30
callback_allow = ["^0\\\\d{9}$", "^1\\\\d{3}$"]
"""
    back = load_config(write(site, text)).queue("back")
    assert back is not None
    assert (back.callback_key, back.callback_retries, back.callback_retry_delay) == ("5", 0, 30.0)
    assert back.callback_allow == ("^0\\d{9}$", "^1\\d{3}$")
    assert [back.callback_delay(n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    sales = load_config(write(site, VALID + QUEUES)).queue("sales")
    assert sales is not None
    assert (sales.callback_retries, sales.callback_retry_delay, sales.callback_allow) == (
        3, 60.0, None)
    bad = VALID + """
[[queues]]
name = "back"
callback_retries = -1
callback_retry_delay = 0
callback_allow = ["(", 7]
"""
    assert [reason for _, reason in problems(write(site, bad))] == [
        "callback_retries -1 in [[queues]] #1 must be 0..100000",
        "callback_retry_delay 0 in [[queues]] #1 must be more than 0 seconds (at most 86400)",
        "callback_allow '(' in [[queues]] #1 is not a valid regular expression: missing ), "
        "unterminated subpattern at position 0",
        "callback_allow in [[queues]] #1: 7 is not a string",
    ]
