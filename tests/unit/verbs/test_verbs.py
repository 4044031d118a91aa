"""Verbs against an in-memory call (the CallControl Protocol): gather's digit rules, say's
number words, set's variables, the registry covering every action of the contract."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pbxcore.script.actions import ACTION_TYPES, parse_action_line
from pbxcore.verbs import VERBS, execute
from pbxcore.verbs.base import Outcome
from pbxcore.verbs.say import number_words

DEMO = Path(__file__).resolve().parents[1] / "demo" / "test_demo_sounds.py"


class FakeMedia:
    def __init__(self) -> None:
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.played: list[bytes] = []

    async def play(self, pcm16: bytes) -> None:
        self.played.append(pcm16)
        await asyncio.sleep(0)

    def flush_digits(self) -> None:
        while not self.digits.empty():
            self.digits.get_nowait()

    def start_recording(self, path: Path) -> None: ...

    async def stop_recording(self) -> float:
        return 0.0

    def seconds_since_voice(self) -> float:
        return 0.0


class FakeCall:
    language = "en"

    def __init__(self) -> None:
        self.vars: dict[str, str] = {}
        self.record_calls = False
        self.media = FakeMedia()
        self.answered = False
        self.sounds: list[str] = []
        self.queued: tuple[str, dict[str, Any]] | None = None
        self.agent_ops: list[tuple[str, str, dict[str, Any]]] = []

    async def answer(self) -> None:
        self.answered = True

    async def ring(self) -> None: ...
    async def reject(self, code: int) -> None: ...
    async def hangup(self) -> None: ...

    def sound(self, name: str) -> bytes:
        self.sounds.append(name)
        return b"\x00\x00" * 80

    def new_recording(self) -> tuple[Path, str]:
        return Path("/tmp/x.wav"), "x.wav"

    def script_path(self, name: str) -> Path:
        return Path("/scripts") / name

    def note(self, kind: str, data: Mapping[str, Any]) -> None: ...
    def interrupted(self, outcome: Outcome) -> None: ...

    async def dial(self, targets: Sequence[str], **kw: Any) -> Outcome | None:
        return Outcome("dial", result="busy", extra={"dial_target": targets[-1]})

    async def enqueue(self, queue: str, **kw: Any) -> Outcome | None:
        self.queued = (queue, kw)
        return Outcome("queue", result="exit_key", digits="0", extra={"queue": queue})

    async def agent_control(self, op: str, extension: str, **kw: Any) -> None:
        self.agent_ops.append((op, extension, kw))

    async def conference(self, room: str, **kw: Any) -> Outcome | None:
        self.conferenced = (room, kw)
        return None


async def gather(line: str, keys: str, *, later: str = "") -> Outcome:
    call = FakeCall()
    action = parse_action_line(line)

    async def press() -> None:
        await asyncio.sleep(0.01)
        for k in keys:
            call.media.digits.put_nowait(k)
        await asyncio.sleep(0.05)
        for k in later:
            call.media.digits.put_nowait(k)

    presser = asyncio.create_task(press())
    outcome = await execute(call, action)  # type: ignore[arg-type]
    presser.cancel()
    assert call.answered  # gather needs media: implicit answer
    assert outcome is not None
    return outcome


async def test_gather_stops_at_max() -> None:
    out = await gather("gather max=2 timeout=1 digit_timeout=1", "123")
    assert (out.event, out.result, out.digits) == ("gather", "ok", "12")


async def test_gather_finish_key_is_not_a_digit() -> None:
    out = await gather("gather max=9 finish=# timeout=1 digit_timeout=1", "42#7")
    assert (out.result, out.digits) == ("ok", "42")


async def test_gather_pound_is_a_digit_without_finish_key() -> None:
    out = await gather("gather max=3 timeout=1 digit_timeout=1", "4#2")
    assert out.digits == "4#2"


async def test_gather_short_and_timeout() -> None:
    short = await gather("gather max=4 min=3 timeout=1 digit_timeout=0.1", "12")
    assert (short.result, short.digits) == ("short", "12")
    none = await gather("gather timeout=0.1", "")
    assert (none.result, none.digits) == ("timeout", "")


async def test_gather_prompt_is_played_and_barged_in() -> None:
    out = await gather("gather max=1 prompt=welcome timeout=1", "5")
    assert out.digits == "5"


async def test_set_and_dial_verbs() -> None:
    call = FakeCall()
    assert await execute(call, parse_action_line("set A=1 b='two words'")) is None  # type: ignore[arg-type]
    assert call.vars == {"A": "1", "b": "two words"}
    out = await execute(call, parse_action_line("transfer 1002"))  # type: ignore[arg-type]
    assert out is not None and out.event == "dial" and out.extra["dial_target"] == "1002"
    await execute(call, parse_action_line("record_call start"))  # type: ignore[arg-type]
    assert call.record_calls is True


async def test_say_digits_names_the_key_prompts() -> None:
    call = FakeCall()
    await execute(call, parse_action_line("say digits 1*#"))  # type: ignore[arg-type]
    assert call.sounds == ["digits/1", "digits/star", "digits/pound"]


async def test_queue_verb_answers_and_hands_every_option_over() -> None:
    call = FakeCall()
    out = await execute(call, parse_action_line(  # type: ignore[arg-type]
        "queue support priority=7 timeout=90 exit_key=0* announce=wait whisper=shops/a"))
    assert call.answered  # hold music needs media: implicit answer
    assert out == Outcome("queue", result="exit_key", digits="0", extra={"queue": "support"})
    assert call.queued == ("support", {"priority": 7, "timeout": 90.0, "exit_key": "0*",
                                       "announce": ("wait",), "whisper": "shops/a"})
    await execute(call, parse_action_line("queue sales announce=none"))  # type: ignore[arg-type]
    assert call.queued == ("sales", {"priority": 0, "timeout": None, "exit_key": "",
                                     "announce": (), "whisper": None})
    await execute(call, parse_action_line("queue sales"))  # type: ignore[arg-type]
    assert call.queued[1]["announce"] is None  # the queue's own announcement


async def test_conference_verb_answers_and_hands_every_option_over() -> None:
    call = FakeCall()
    out = await execute(call, parse_action_line(  # type: ignore[arg-type]
        "conference board moderator=yes muted=yes max=9 pin=123 end=yes"))
    assert call.answered and out is None  # in the room until the call ended
    assert call.conferenced == ("board", {"moderator": True, "muted": True, "max_members": 9,
                                          "pin": "123", "end": True})
    await execute(call, parse_action_line("conference sales"))  # type: ignore[arg-type]
    assert call.conferenced == ("sales", {"moderator": False, "muted": False,
                                          "max_members": None, "pin": None, "end": False})


async def test_agent_verb_has_no_outcome_and_does_not_answer() -> None:
    call = FakeCall()
    assert await execute(call, parse_action_line(  # type: ignore[arg-type]
        "agent pause 1001 queue=support reason=lunch")) is None
    assert await execute(call, parse_action_line("agent login 1002")) is None  # type: ignore[arg-type]
    assert not call.answered
    assert call.agent_ops == [("pause", "1001", {"queue": "support", "reason": "lunch"}),
                              ("login", "1002", {"queue": None, "reason": None})]


def test_every_action_has_a_verb() -> None:
    assert set(VERBS) == set(ACTION_TYPES)


def _demo_words() -> Any:
    spec = importlib.util.spec_from_file_location("demo_sounds", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n", [0, 7, 13, 20, 42, 100, 342, 1000, 1250, 2000, 11000, 21512,
                               345678, 999999, -15, 1_000_000, 1_002_000, 22_000_000,
                               2_000_000_005, 5_000_000_000_000, 999_999_999_999_999,
                               -999_999_999_999_999])
def test_number_words_match_the_sound_scheme(n: int) -> None:
    demo = _demo_words()
    assert number_words(n, "en") == demo.words_en(n)
    assert number_words(n, "ru") == demo.words_ru(n)
