"""Actions of protocol v1: text and JSON forms, defaults, errors with line numbers."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxcore.script.actions import (
    ACTION_TYPES,
    ActionError,
    Agent,
    Answer,
    Conference,
    Dial,
    Gather,
    Goto,
    Hangup,
    Log,
    Play,
    Queue,
    Record,
    RecordCall,
    Reject,
    Ring,
    Say,
    Set,
    Transfer,
    Voicemail,
    Wait,
    from_json,
    parse_action_line,
    parse_actions,
)
from pbxcore.script.paths import resolve_script, resolve_sound
from pbxcore.script.words import quote_word, split_words

# (text form, JSON form, object): each row is checked in all six directions.
FORMS = [
    ("answer", {"action": "answer"}, Answer()),
    ("ring", {"action": "ring"}, Ring()),
    ("hangup", {"action": "hangup"}, Hangup()),
    ("play welcome", {"action": "play", "files": ["welcome"]}, Play(("welcome",))),
    ("play a b/c.wav loop=3", {"action": "play", "files": ["a", "b/c.wav"], "loop": 3},
     Play(("a", "b/c.wav"), loop=3)),
    ("say digits 12#", {"action": "say", "kind": "digits", "value": "12#"}, Say("digits", "12#")),
    ("say number -42", {"action": "say", "kind": "number", "value": "-42"}, Say("number", "-42")),
    ("gather", {"action": "gather"}, Gather()),
    ("gather max=4 min=2 timeout=7.5 digit_timeout=2 finish=# prompt=menu",
     {"action": "gather", "max": 4, "min": 2, "timeout": 7.5, "digit_timeout": 2, "finish": "#",
      "prompt": "menu"},
     Gather(max=4, min=2, timeout=7.5, digit_timeout=2.0, finish="#", prompt="menu")),
    ("record", {"action": "record"}, Record()),
    ("record max=120 beep=no finish=none silence=3",
     {"action": "record", "max": 120, "beep": False, "finish": None, "silence": 3},
     Record(max=120.0, beep=False, finish=None, silence=3.0)),
    ("record finish=*", {"action": "record", "finish": "*"}, Record(finish="*")),
    ("set lang=fr customer='Jane Doe' empty=''",
     {"action": "set", "vars": {"lang": "fr", "customer": "Jane Doe", "empty": ""}},
     Set({"lang": "fr", "customer": "Jane Doe", "empty": ""})),
    ("goto sales/ivr.py", {"action": "goto", "script": "sales/ivr.py"}, Goto("sales/ivr.py")),
    ("wait 1.5", {"action": "wait", "seconds": 1.5}, Wait(1.5)),
    ("wait 2", {"action": "wait", "seconds": 2}, Wait(2.0)),
    ("reject busy", {"action": "reject", "reason": "busy"}, Reject("busy")),
    ("reject 486", {"action": "reject", "reason": "486"}, Reject("486")),
    ("log 'caller is VIP'", {"action": "log", "text": "caller is VIP"}, Log("caller is VIP")),
    ("dial 1002 sip:bob@10.0.0.2:5070 mode=parallel timeout=20 caller_id=100 ringback=moh "
     "record=yes",
     {"action": "dial", "targets": ["1002", "sip:bob@10.0.0.2:5070"], "mode": "parallel",
      "timeout": 20, "caller_id": "100", "ringback": "moh", "record": True},
     Dial(("1002", "sip:bob@10.0.0.2:5070"), mode="parallel", timeout=20.0, caller_id="100",
          ringback="moh", record=True)),
    ("dial 1002", {"action": "dial", "targets": ["1002"]}, Dial(("1002",))),
    ("transfer 84951234567 timeout=15",
     {"action": "transfer", "target": "84951234567", "timeout": 15},
     Transfer("84951234567", timeout=15.0)),
    ("record_call start", {"action": "record_call", "what": "start"}, RecordCall("start")),
    ("queue support", {"action": "queue", "name": "support"}, Queue("support")),
    ("queue vip-line priority=10 timeout=120 exit_key=0* announce=none whisper=shops/a",
     {"action": "queue", "name": "vip-line", "priority": 10, "timeout": 120, "exit_key": "0*",
      "announce": "none", "whisper": "shops/a"},
     Queue("vip-line", priority=10, timeout=120.0, exit_key="0*", announce="none",
           whisper="shops/a")),
    ("queue sales announce=position,wait timeout=1.5",
     {"action": "queue", "name": "sales", "announce": "position,wait", "timeout": 1.5},
     Queue("sales", announce="position,wait", timeout=1.5)),
    ("agent login 1001", {"action": "agent", "op": "login", "extension": "1001"},
     Agent("login", "1001")),
    ("agent pause 1001 queue=support reason=lunch",
     {"action": "agent", "op": "pause", "extension": "1001", "queue": "support",
      "reason": "lunch"},
     Agent("pause", "1001", queue="support", reason="lunch")),
    ("conference sales", {"action": "conference", "room": "sales"}, Conference("sales")),
    ("conference board moderator=yes muted=yes max=5 pin=1234 end=yes",
     {"action": "conference", "room": "board", "moderator": True, "muted": True, "max": 5,
      "pin": "1234", "end": True},
     Conference("board", moderator=True, muted=True, max=5, pin="1234", end=True)),
    ("voicemail sales", {"action": "voicemail", "box": "sales"}, Voicemail("sales")),
    ("voicemail 201 greeting=vm/after-hours max=60 beep=no finish=*",
     {"action": "voicemail", "box": "201", "greeting": "vm/after-hours", "max": 60,
      "beep": False, "finish": "*"},
     Voicemail("201", greeting="vm/after-hours", max=60.0, beep=False, finish="*")),
]


@pytest.mark.parametrize(("text", "obj", "action"), FORMS, ids=[f[0] for f in FORMS])
def test_text_and_json_forms(text: str, obj: dict[str, object], action: object) -> None:
    assert parse_action_line(text) == action
    assert from_json(obj) == action
    assert parse_action_line(action.to_text()) == action  # type: ignore[attr-defined]
    assert action.to_json() == obj  # type: ignore[attr-defined]
    assert parse_actions(json.dumps([obj])) == [action]
    assert parse_actions(text + "\n") == [action]


def test_every_verb_has_a_form_row_and_flags() -> None:
    assert {type(a) for _, _, a in FORMS} == set(ACTION_TYPES.values())
    assert {v for v, c in ACTION_TYPES.items() if c.has_outcome} == {
        "gather", "record", "goto", "dial", "transfer", "queue", "conference",
        "voicemail"}
    assert {v for v, c in ACTION_TYPES.items() if c.needs_answer} == {
        "play", "say", "gather", "record", "queue", "conference",
        "voicemail"}


def test_defaults() -> None:
    g = parse_action_line("gather")
    assert (g.max, g.min, g.timeout, g.digit_timeout, g.finish, g.prompt) == (
        20, 1, 5.0, 3.0, None, None)
    r = parse_action_line("record")
    assert (r.max, r.beep, r.finish, r.silence) == (60.0, True, "#", 0.0)
    assert parse_action_line("play x").loop == 1
    # An option equal to its default is not written back.
    assert parse_action_line("gather max=20 finish=none").to_text() == "gather"


def test_reject_status() -> None:
    assert [Reject(r).status for r in ("busy", "decline", "unavailable", "404")] == [
        486, 603, 480, 404]
    assert from_json({"action": "reject", "reason": 503}) == Reject("503")


def test_text_lines_comments_quoting() -> None:
    out = b"""# greeting
answer   # comment after a word

play "hello world" 'it''s' a\\ b
gather finish=# max=4
"""
    assert parse_actions(out) == [
        Answer(), Play(("hello world", "its", "a b")), Gather(max=4, finish="#")]
    assert parse_actions(b"answer\r\nhangup\r\n") == [Answer(), Hangup()]
    assert parse_actions(b"") == []
    assert parse_actions(b"  \n# only a comment\n") == []


@pytest.mark.parametrize(("out", "error"), [
    (b"answer\nplya x", "line 2: unknown action 'plya' (did you mean 'play'?)"),
    (b"answer\n\n  gather max=x", "line 3: gather: max must be an integer 1..64, got 'x'"),
    (b"gather max=65", "line 1: gather: max must be an integer 1..64, got '65'"),
    (b"gather max=+5", "line 1: gather: max must be an integer 1..64, got '+5'"),
    (b"gather min=5 max=3", "line 1: gather: min must not exceed max (min=5, max=3)"),
    (b"gather timeout=nan", "line 1: gather: timeout must be a number of seconds 0..600, "
                            "got 'nan'"),
    (b"gather finish=12", "line 1: gather: finish must be one DTMF key 0-9 * # or none, "
                          "got '12'"),
    (b"gather loop=2", "line 1: gather: unknown option 'loop' (options: max, min, timeout, "
                       "digit_timeout, finish, prompt)"),
    (b"gather max=2 max=3", "line 1: gather: option 'max' given twice"),
    (b"gather 4", "line 1: gather: unexpected argument '4'"),
    (b"record beep=maybe", "line 1: record: beep must be yes or no (true or false in JSON), "
                           "got 'maybe'"),
    (b"play", "line 1: play: missing FILE"),
    (b"play ../../etc/passwd", "line 1: play: path must stay inside the sounds directory, "
                               "got '../../etc/passwd'"),
    (b"play /etc/passwd", "line 1: play: path must stay inside the sounds directory, "
                          "got '/etc/passwd'"),
    (b"gather prompt=a/../../x", "line 1: gather: path must stay inside the sounds directory, "
                                 "got 'a/../../x'"),
    (b"goto ../bin/sh", "line 1: goto: path must stay inside the scripts directory, "
                        "got '../bin/sh'"),
    (b"say", "line 1: say: missing KIND"),
    (b"say digits", "line 1: say: missing VALUE"),
    (b"say words hi", "line 1: say: KIND must be one of digits|number|text, got 'words'"),
    (b"say number 12#", "line 1: say: number VALUE must be an integer, got '12#'"),
    (b"say digits -1", "line 1: say: digits VALUE must be keys 0-9 * #, got '-1'"),
    (b"set", "line 1: set: missing NAME=VALUE"),
    (b"set 1x=2", "line 1: set: expected NAME=VALUE pairs (NAME: letters, digits, _; VALUE: "
                  "at most 1024 characters), got '1x=2'"),
    (b"set a=1 a=2", "line 1: set: 'a' given twice"),
    (b"wait", "line 1: wait: missing SECONDS"),
    (b"wait -1", "line 1: wait: SECONDS must be a number of seconds 0..3600, got '-1'"),
    (b"wait 1 2", "line 1: wait: unexpected argument '2'"),
    (b"reject 399", "line 1: reject: REASON must be busy|decline|unavailable or a SIP status "
                    "400..699, got '399'"),
    (b"log", "line 1: log: missing TEXT"),
    (b"answer extra", "line 1: answer: unexpected argument 'extra'"),
    (b"play 'unterminated", "line 1: unterminated single quote"),
    (b'play "unterminated', "line 1: unterminated double quote"),
    (b"play trailing\\", "line 1: backslash at end of line"),
    (b"answer\n\xff\n", "line 2: output is not valid UTF-8"),
    (b"answer\ngather\nplay x", "line 3: play: would never run: gather has an outcome and "
                                "ends the list"),
    (b"goto x.py\nhangup", "line 2: hangup: would never run: goto has an outcome and ends "
                           "the list"),
    (b"answer\nqueue support\nplay sorry", "line 3: play: would never run: queue has an "
                                            "outcome and ends the list"),
    (b"queue", "line 1: queue: missing NAME"),
    (b"queue 'sup port'", "line 1: queue: NAME must be a queue name of at most 32 "
                          "characters, got 'sup port'"),
    (b"queue support priority=101", "line 1: queue: priority must be an integer 0..100, "
                                    "got '101'"),
    (b"queue support timeout=0", "line 1: queue: timeout must be a number of seconds "
                                 "1..86400, got '0'"),
    (b"queue support exit_key=9a", "line 1: queue: exit_key must be DTMF keys 0-9 * # of at "
                                   "most 12 characters, got '9a'"),
    (b"queue support announce=wait,position", "line 1: queue: announce must be one of "
                                              "position,wait|position|wait|none, got "
                                              "'wait,position'"),
    (b"queue support whisper=../x", "line 1: queue: path must stay inside the sounds "
                                    "directory, got '../x'"),
    (b"agent", "line 1: agent: missing login|logout|pause|unpause"),
    (b"agent pause", "line 1: agent: missing EXT"),
    (b"agent sleep 1001", "line 1: agent: login|logout|pause|unpause must be one of "
                          "login|logout|pause|unpause, got 'sleep'"),
    (b"agent login 1001 reason=lunch", "line 1: agent: reason= goes with pause or unpause, "
                                       "not login"),
    (b"agent pause 1001 reason='two words'", "line 1: agent: reason must be a reason name "
                                             "of at most 32 characters, got 'two words'"),
])
def test_text_errors(out: bytes, error: str) -> None:
    with pytest.raises(ActionError) as info:
        parse_actions(out)
    assert str(info.value) == error
    assert info.value.line == int(error.split(":")[0].split()[1])


@pytest.mark.parametrize(("out", "error"), [
    ('[{"action": "plya"}]', "action 1: unknown action 'plya' (did you mean 'play'?)"),
    ('[{"action": "answer"}, {"action": "gather", "max": "4"}]',
     "action 2: gather: max must be an integer 1..64, got '4'"),
    ('{"action": "gather", "max": true}', "action 1: gather: max must be an integer 1..64, "
                                          "got true"),
    ('{"action": "gather", "max": 4.0}', None),
    ('{"action": "gather", "max": 4.5}', "action 1: gather: max must be an integer 1..64, "
                                         "got 4.5"),
    ('[{"action": "play"}]', "action 1: play: missing 'files'"),
    ('[{"action": "play", "files": []}]', "action 1: play: files must be a non-empty array, "
                                          "got []"),
    ('[{"action": "play", "files": ["/etc/passwd"]}]',
     "action 1: play: path must stay inside the sounds directory, got '/etc/passwd'"),
    ('[{"action": "hangup", "cause": 1}]', "action 1: hangup: unknown option 'cause'"),
    ('[{"verb": "hangup"}]', "action 1: missing 'action' (the verb)"),
    ('["hangup"]', "action 1: expected an action object, got 'hangup'"),
    ('{"action": "set", "vars": {"a": 1}}',
     "action 1: set: expected NAME=VALUE pairs (NAME: letters, digits, _; VALUE: at most 1024 "
     "characters), got {\"a\": 1}"),
    ('{"action": "wait", "seconds": NaN}', "invalid JSON: NaN is not a number"),
    ('{"action": "wait", "action": "hangup"}', "duplicate key 'action'"),
    ('{"actions": [{"action": "answer"}], "x": 1}',
     'a JSON object must be one action or {"actions": [...]}'),
    ('[{"action": "gather"}, {"action": "hangup"}]',
     "action 2: hangup: would never run: gather has an outcome and ends the list"),
    ('[{"action": "queue", "name": "q"}, {"action": "log", "text": "x"}]',
     "action 2: log: would never run: queue has an outcome and ends the list"),
    ('{"action": "queue", "name": "q", "timeout": null}',
     "action 1: queue: timeout must be a number of seconds 1..86400, got null"),
    ('{"action": "agent", "op": "logout", "extension": "1001", "reason": "x"}',
     "action 1: agent: reason= goes with pause or unpause, not logout"),
    ('[\n{"action": "answer"},\n{"action" "hangup"}\n]', "line 3: invalid JSON: Expecting "
                                                          "':' delimiter"),
])
def test_json_errors(out: str, error: str | None) -> None:
    if error is None:
        assert parse_actions(out) == [Gather(max=4)]
        return
    with pytest.raises(ActionError) as info:
        parse_actions(out)
    assert str(info.value) == error


def test_json_document_shapes() -> None:
    both = [Answer(), Hangup()]
    assert parse_actions(b' \n[{"action":"answer"},{"action":"hangup"}]') == both
    assert parse_actions(b'{"actions":[{"action":"answer"},{"action":"hangup"}]}') == both
    assert parse_actions(b'{"action":"answer"}') == [Answer()]
    assert parse_actions(b"[]") == []


def test_max_actions() -> None:
    assert len(parse_actions(b"answer\n" * 100)) == 100
    with pytest.raises(ActionError, match=r"^line 101: more than 100 actions$"):
        parse_actions(b"answer\n" * 101)
    with pytest.raises(ActionError, match=r"^line 4: more than 3 actions$"):
        parse_actions(b"log a\nlog b\nlog c\nlog d\n", max_actions=3)
    with pytest.raises(ActionError, match=r"^action 3: more than 2 actions$"):
        parse_actions(json.dumps([{"action": "ring"}] * 3), max_actions=2)


def test_parse_action_line_for_config_fallback() -> None:
    assert [parse_action_line(t) for t in ["play sorry", "hangup"]] == [
        Play(("sorry",)), Hangup()]
    with pytest.raises(ActionError, match="^empty action$"):
        parse_action_line("  # nothing")
    with pytest.raises(ActionError) as info:
        parse_action_line("plya sorry")
    assert info.value.line is None


def test_split_words_and_quote_word() -> None:
    assert split_words("""a 'b c' "d \\"e\\" \\$f \\n" g\\ h #c""") == [
        "a", "b c", 'd "e" $f \\n', "g h"]
    assert split_words("finish=# x#y") == ["finish=#", "x#y"]
    assert split_words("$(touch pwned) `id`") == ["$(touch", "pwned)", "`id`"]
    for word in ["", "#", "a b", "it's", '"q"', "x=#", "\\", "é", "\t", "$HOME"]:
        assert split_words(quote_word(word)) == [word]


def test_resolve_sound_and_script() -> None:
    base = PurePosixPath("/srv/pbx/sounds")
    assert resolve_sound("welcome", base, "en") == base / "en" / "welcome.wav"
    assert resolve_sound("menu/main.ulaw", base, "fr-CA") == base / "fr-CA" / "menu/main.ulaw"
    for bad in ["../x", "/etc/passwd", "a/../../x", "a\x00b", ""]:
        with pytest.raises(ActionError, match="path must stay inside the sounds directory"):
            resolve_sound(bad, base, "en")
    with pytest.raises(ActionError, match="bad language"):
        resolve_sound("x", base, "../etc")
    assert resolve_script("a/b.py", PurePosixPath("/s")) == PurePosixPath("/s/a/b.py")
    with pytest.raises(ActionError, match="scripts directory"):
        resolve_script("../b.py", PurePosixPath("/s"))


def test_caller_text_in_a_log_line_cannot_make_a_new_action() -> None:
    # A script that quotes a hostile caller name safely produces one log action.
    hostile = "1000\nhangup"
    line = Log(hostile).to_text()
    assert parse_action_line(line) == Log(hostile)


_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20).filter(
    lambda s: "\x00" not in s)
_path = st.from_regex(r"[a-z0-9_]{1,8}(/[a-z0-9_.-]{1,8}){0,2}", fullmatch=True).filter(
    lambda s: ".." not in s.split("/"))
_secs = st.sampled_from([0.0, 0.5, 1.0, 2.25, 30.0, 600.0])
_key = st.sampled_from([None, *"0123456789*#"])
ACTIONS = st.one_of(
    st.sampled_from([Answer(), Ring(), Hangup()]),
    st.builds(Play, st.lists(_path, min_size=1, max_size=3).map(tuple), st.integers(1, 100)),
    st.builds(Say, st.just("digits"), st.from_regex(r"[0-9*#]{1,32}", fullmatch=True)),
    st.builds(Say, st.just("number"), st.from_regex(r"-?[0-9]{1,15}", fullmatch=True)),
    st.integers(1, 64).flatmap(lambda mx: st.builds(
        Gather, st.just(mx), st.integers(1, mx), _secs, _secs, _key, st.none() | _path)),
    st.builds(Record, st.sampled_from([1.0, 60.0, 90.5]), st.booleans(), _key, _secs.filter(
        lambda s: s <= 60)),
    st.builds(Set, st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}",
                                                 fullmatch=True), _text | st.just(""),
                                   min_size=1, max_size=3)),
    st.builds(Goto, _path),
    st.builds(Wait, _secs),
    st.builds(Reject, st.sampled_from(["busy", "decline", "unavailable", "404", "699"])),
    st.builds(Log, _text.filter(lambda s: s == " ".join(split_words(quote_word(s))))),
)


@given(ACTIONS)
def test_round_trip_property(action: object) -> None:
    text = action.to_text()  # type: ignore[attr-defined]
    assert parse_action_line(text) == action
    assert from_json(json.loads(json.dumps(action.to_json()))) == action  # type: ignore[attr-defined]


def test_say_text_parses_with_its_voice_and_refuses_controls() -> None:
    from pbxcore.script.actions import Say, parse_action_line

    action = parse_action_line('say text "Your order 4711 ships tomorrow." voice=en-gb')
    assert action == Say("text", "Your order 4711 ships tomorrow.", voice="en-gb")
    assert parse_action_line(action.to_text()) == action
    with pytest.raises(ActionError, match="voice= applies to say text only"):
        parse_action_line("say digits 123 voice=en-us")
    with pytest.raises(ActionError, match="VALUE"):
        parse_action_line('say text "bell\\x07"'.replace("\\x07", "\x07"))
    with pytest.raises(ActionError, match="voice"):
        parse_action_line('say text hi voice="-w /etc/passwd"')
