"""The actions a script prints on stdout (protocol v1): classes, registry, parsers, serializers.

Theory of operation: each verb is one frozen dataclass whose fields carry their grammar in the
field metadata (a :class:`~pbxcore.script.schema.Kind`, a doc line, and for positional
arguments a metavar). Both input forms go through that one table:

* text: one action per line, POSIX shell word rules (``'...'``, ``"..."``, backslash; ``#``
  starts a comment only at the start of a word, so ``finish=#`` works), ``key=value`` options;
* JSON: stdout whose first non-space character is ``[`` (array of action objects) or ``{``
  (one action object, or ``{"actions": [...]}``), with ``{"action": VERB, key: value}``.

So the text validator, the JSON validator, the serializers and docs/actions.schema.json agree by
construction. Errors are :class:`ActionError` with the 1-based line number (text, or JSON syntax
errors) and a message that names the verb, the parameter, what was expected and what was got.
An action with an outcome (gather, record, goto, dial, transfer, queue, conference) ends the list: anything after it would never
run, so it is reported as an error rather than silently dropped. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pbxcore.script.schema import (
    JSON,
    BoolKind,
    EnumKind,
    IntKind,
    KeyKind,
    Kind,
    PairsKind,
    Param,
    PathError,
    PathKind,
    ReasonKind,
    SecondsKind,
    TextKind,
    build_schema,
)
from pbxcore.script.words import OPTION, quote_word, split_words

MAX_ACTIONS = 100
"""Default cap on the number of actions in one script output."""

SAY_TEXT_MAX = 500
"""Longest `say text` (characters); pbxcore.media.tts.MAX_TEXT is the same cap."""

REJECT_STATUS = {"busy": 486, "decline": 603, "unavailable": 480}
"""SIP final status sent for each named reject reason (RFC 3261 §21.4, §21.6)."""


class ActionError(ValueError):
    """A script printed something that is not a valid action list: the script's fault."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        """1-based line of stdout, or None (JSON structure errors name the action instead)."""
        self.message = message


def _p(kind: Kind, doc: str, *, metavar: str | None = None, variadic: bool = False,
       join: bool = False) -> dict[str, Any]:
    return {"pbx": (kind, doc, metavar, variadic, join)}


@dataclass(frozen=True)
class Action:
    """Base of every action; subclasses are the verbs."""

    verb: ClassVar[str]
    has_outcome: ClassVar[bool] = False
    """Ends the action list; its result comes back as the next event."""
    needs_answer: ClassVar[bool] = False
    """Needs media: the engine answers the call first if it is not answered yet."""
    params: ClassVar[tuple[Param, ...]] = ()

    def check(self) -> str | None:
        """Rules across fields (not expressible in the schema); the error text or None."""
        return None

    def to_text(self) -> str:
        words = [self.verb]
        for p, value in self._set_values():
            if isinstance(p.kind, PairsKind):
                words += [f"{k}={quote_word(v, after_equals=True)}" for k, v in value.items()]
            elif p.positional and p.variadic and not p.join:
                words += [quote_word(p.kind.to_text(v)) for v in value]
            elif p.positional:
                words.append(quote_word(p.kind.to_text(value)))
            else:
                words.append(f"{p.name}={quote_word(p.kind.to_text(value), after_equals=True)}")
        return " ".join(words)

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"action": self.verb}
        for p, value in self._set_values():
            if isinstance(p.kind, PairsKind):
                out[p.name] = dict(value)
            elif p.variadic and not p.join:
                out[p.name] = [p.kind.to_json(v) for v in value]
            else:
                out[p.name] = p.kind.to_json(value)
        return out

    def _set_values(self) -> list[tuple[Param, Any]]:
        defaults = _defaults(type(self))
        return [
            (p, getattr(self, p.name))
            for p in self.params
            if p.name not in defaults or getattr(self, p.name) != defaults[p.name]
        ]


SECONDS = SecondsKind(0, 3600)
SOUND = PathKind("sounds")


@dataclass(frozen=True)
class Answer(Action):
    """Answer the call (200 OK)."""

    verb = "answer"


@dataclass(frozen=True)
class Ring(Action):
    """Signal ringing to the caller (180 Ringing) without answering."""

    verb = "ring"


@dataclass(frozen=True)
class Hangup(Action):
    """End the call (BYE once answered, 480 before)."""

    verb = "hangup"


@dataclass(frozen=True)
class Play(Action):
    """Play sound files in order; loop=N plays the whole list N times."""

    verb = "play"
    needs_answer = True
    files: tuple[str, ...] = field(
        metadata=_p(SOUND, "sound files, relative to sounds/LANGUAGE/; .wav is added when "
                    "the name has no extension", metavar="FILE", variadic=True))
    loop: int = field(default=1, metadata=_p(IntKind(1, 100), "times to play the list"))


@dataclass(frozen=True)
class Say(Action):
    """Speak a value: digit by digit or as a number with the language's prompts, or any text
    with espeak-ng (`say text "..."`, rendered once and cached)."""

    verb = "say"
    needs_answer = True
    kind: str = field(metadata=_p(EnumKind(("digits", "number", "text")),
                                  "how to speak the value", metavar="KIND"))
    value: str = field(metadata=_p(
        TextKind(SAY_TEXT_MAX, r"[^\x00-\x08\x0b-\x1f\x7f]+",
                 "digits, an integer, or text"),
        "what to speak: keys 0-9 * # for digits, an integer for number, up to "
        f"{SAY_TEXT_MAX} characters for text", metavar="VALUE"))
    voice: str | None = field(default=None, metadata=_p(
        TextKind(40, r"[a-z]{2,3}(-[a-z0-9]{2,8})*(\+[a-z0-9]{1,12})?", "an espeak-ng voice"),
        "text only: the espeak-ng voice (default: en-us for en, ru for ru)"))

    def check(self) -> str | None:
        if self.kind == "number" and not re.fullmatch(r"-?[0-9]{1,15}", self.value):
            return f"say: number VALUE must be an integer, got {self.value!r}"
        if self.kind == "digits" and not re.fullmatch(r"[0-9*#]{1,32}", self.value):
            return f"say: digits VALUE must be keys 0-9 * #, got {self.value!r}"
        if self.kind != "text" and self.voice is not None:
            return "say: voice= applies to say text only"
        return None


@dataclass(frozen=True)
class Gather(Action):
    """Collect DTMF digits; the result comes back as the `gather` event."""

    verb = "gather"
    has_outcome = True
    needs_answer = True
    max: int = field(default=20, metadata=_p(IntKind(1, 64), "stop after this many digits"))
    min: int = field(default=1, metadata=_p(IntKind(1, 64), "fewer digits is result=short"))
    timeout: float = field(default=5.0, metadata=_p(SecondsKind(0, 600),
                                                    "seconds to wait for the first digit"))
    digit_timeout: float = field(default=3.0, metadata=_p(SecondsKind(0, 600),
                                                          "seconds to wait between digits"))
    finish: str | None = field(default=None, metadata=_p(
        KeyKind(), "key that ends input (not part of the digits); unset: every key is a digit"))
    prompt: str | None = field(default=None, metadata=_p(
        SOUND, "sound played while waiting; a key press stops it"))

    def check(self) -> str | None:
        if self.min > self.max:
            return f"gather: min must not exceed max (min={self.min}, max={self.max})"
        return None


@dataclass(frozen=True)
class Record(Action):
    """Record the caller; the result comes back as the `record` event."""

    verb = "record"
    has_outcome = True
    needs_answer = True
    max: float = field(default=60.0, metadata=_p(SecondsKind(1, 3600), "longest recording"))
    beep: bool = field(default=True, metadata=_p(BoolKind(), "play a beep before recording"))
    finish: str | None = field(default="#", metadata=_p(KeyKind(), "key that stops recording"))
    silence: float = field(default=0.0, metadata=_p(SecondsKind(0, 60),
                                                    "stop after this much silence; 0 = off"))


@dataclass(frozen=True)
class Set(Action):
    """Set call variables; later events carry them as PBX_VAR_<NAME> and in "vars"."""

    verb = "set"
    vars: Mapping[str, str] = field(metadata=_p(PairsKind(), "variables to set",
                                                metavar="NAME=VALUE"))


@dataclass(frozen=True)
class Goto(Action):
    """Hand the call to another script, which gets the `redirect` event."""

    verb = "goto"
    has_outcome = True
    script: str = field(metadata=_p(PathKind("scripts"), "script, relative to scripts/",
                                    metavar="SCRIPT"))


@dataclass(frozen=True)
class Wait(Action):
    """Do nothing for a while (the caller hears what they heard before)."""

    verb = "wait"
    seconds: float = field(metadata=_p(SECONDS, "how long", metavar="SECONDS"))


@dataclass(frozen=True)
class Reject(Action):
    """Refuse the call with a SIP final status (or hang up if already answered)."""

    verb = "reject"
    reason: str = field(metadata=_p(ReasonKind(tuple(REJECT_STATUS)),
                                    "busy (486), decline (603), unavailable (480) or a status",
                                    metavar="REASON"))

    @property
    def status(self) -> int:
        return REJECT_STATUS.get(self.reason) or int(self.reason)


@dataclass(frozen=True)
class Log(Action):
    """Write a line to the call's trace."""

    verb = "log"
    text: str = field(metadata=_p(TextKind(4096), "the message", metavar="TEXT",
                                  variadic=True, join=True))


DIAL_TARGET = TextKind(256, r"[A-Za-z0-9+*#._@:;=%-]{1,256}",
                       "an extension, a number or a sip: URI")


@dataclass(frozen=True)
class Dial(Action):
    """Ring one or more targets; a target that answers is bridged to the caller."""

    verb = "dial"
    has_outcome = True
    targets: tuple[str, ...] = field(metadata=_p(
        DIAL_TARGET, "extensions, numbers (through a trunk) or sip: URIs", metavar="TARGET",
        variadic=True))
    mode: str = field(default="sequential", metadata=_p(
        EnumKind(("sequential", "parallel")),
        "sequential: ring each target for `timeout` in turn; parallel: ring all, first wins"))
    timeout: float = field(default=30.0, metadata=_p(SecondsKind(1, 600),
                                                     "seconds to ring (each target, if sequential)"))
    caller_id: str | None = field(default=None, metadata=_p(
        TextKind(64, r"[A-Za-z0-9+*#._-]{1,64}", "a number"),
        "number shown to the callee (default: the caller's)"))
    ringback: str = field(default="ring", metadata=_p(
        EnumKind(("ring", "moh")), "what the caller hears while it rings"))
    record: bool = field(default=False, metadata=_p(BoolKind(), "record the conversation"))


@dataclass(frozen=True)
class Transfer(Action):
    """Hand the caller to one target (dial with one target); same `dial` event on failure."""

    verb = "transfer"
    has_outcome = True
    target: str = field(metadata=_p(DIAL_TARGET, "where to", metavar="TARGET"))
    timeout: float = field(default=30.0, metadata=_p(SecondsKind(1, 600), "seconds to ring"))


@dataclass(frozen=True)
class RecordCall(Action):
    """Start or stop recording the conversation (both sides, mixed and per side)."""

    verb = "record_call"
    what: str = field(metadata=_p(EnumKind(("start", "stop")), "start or stop",
                                  metavar="start|stop"))


QUEUE_NAME = TextKind(32, r"[A-Za-z0-9_-]{1,32}", "a queue name")
EXTENSION = TextKind(64, r"[A-Za-z0-9_.+-]{1,64}", "an extension")
ANNOUNCE: Mapping[str, tuple[str, ...]] = {
    "position,wait": ("position", "wait"), "position": ("position",), "wait": ("wait",),
    "none": ()}
"""The words of `announce=` (action and [[queues]]) and what each announces."""
AGENT_OPS = ("login", "logout", "pause", "unpause")


@dataclass(frozen=True)
class Queue(Action):
    """Wait in a call-centre queue until an agent answers; the agent is bridged like `dial`."""

    verb = "queue"
    has_outcome = True
    needs_answer = True  # the caller hears hold music and announcements
    name: str = field(metadata=_p(QUEUE_NAME, "a [[queues]] name of pbx.toml", metavar="NAME"))
    priority: int = field(default=0, metadata=_p(
        IntKind(0, 100), "higher is served first (VIP); first come first served within one"))
    timeout: float | None = field(default=None, metadata=_p(
        SecondsKind(1, 86400), "seconds to wait at most, then the `queue` event with timeout "
        "(default: the queue's max_wait)"))
    exit_key: str | None = field(default=None, metadata=_p(
        TextKind(12, r"[0-9*#]{1,12}", "DTMF keys 0-9 * #"),
        "keys that leave the queue (the `queue` event with exit_key, PBX_DIGITS the key)"))
    announce: str | None = field(default=None, metadata=_p(
        EnumKind(tuple(ANNOUNCE)), "what the periodic announcement says (default: the "
        "queue's announce)"))
    whisper: str | None = field(default=None, metadata=_p(
        SOUND, "sound played to the agent only before the bridge (default: the queue's)"))


@dataclass(frozen=True)
class Agent(Action):
    """Log an agent in or out of the queues, pause or unpause them (route `agent_control`)."""

    verb = "agent"
    op: str = field(metadata=_p(EnumKind(AGENT_OPS), "what to do",
                                metavar="login|logout|pause|unpause"))
    extension: str = field(metadata=_p(EXTENSION, "the agent's extension", metavar="EXT"))
    queue: str | None = field(default=None, metadata=_p(
        QUEUE_NAME, "only this queue (default: every queue the agent is a member of)"))
    reason: str | None = field(default=None, metadata=_p(
        TextKind(32, r"[A-Za-z0-9_-]{1,32}", "a reason name"),
        "why (pause and unpause only): shown in `pbx agents` and the journal"))

    def check(self) -> str | None:
        if self.reason is not None and self.op not in ("pause", "unpause"):
            return f"agent: reason= goes with pause or unpause, not {self.op}"
        return None


ROOM_NAME = TextKind(32, r"[A-Za-z0-9_-]{1,32}", "a room name")
CONFERENCE_RESULTS = ("full", "bad_pin")
"""Why a caller never got into a room (the `conference` event); once in, the call ends there."""


@dataclass(frozen=True)
class Conference(Action):
    """Join a conference room: everybody hears everybody else; the call ends in the room."""

    verb = "conference"
    has_outcome = True
    needs_answer = True
    room: str = field(metadata=_p(ROOM_NAME, "the room (created by its first member)",
                                  metavar="ROOM"))
    moderator: bool = field(default=False, metadata=_p(
        BoolKind(), "a moderator: members who joined with end=yes leave with the last one"))
    muted: bool = field(default=False, metadata=_p(BoolKind(), "hears the room, heard by nobody"))
    max: int | None = field(default=None, metadata=_p(
        IntKind(1, 500), "refuse to join (the `conference` event, full) when the room already "
        "has this many members"))
    pin: str | None = field(default=None, metadata=_p(
        TextKind(16, r"[0-9]{1,16}", "digits 0-9"),
        "the caller must key this PIN first (after a beep, # ends; 3 tries, then bad_pin)"))
    end: bool = field(default=False, metadata=_p(
        BoolKind(), "hang up when the last moderator leaves (ConfBridge end_marked)"))


VOICEMAIL_BOX = TextKind(64, r"[A-Za-z0-9_.+-]{1,64}", "a [[voicemail]] box")


@dataclass(frozen=True)
class Voicemail(Action):
    """Take a message for a [[voicemail]] box: greeting, beep, record; the `voicemail` event."""

    verb = "voicemail"
    has_outcome = True
    needs_answer = True
    box: str = field(metadata=_p(VOICEMAIL_BOX, "a [[voicemail]] box of pbx.toml", metavar="BOX"))
    greeting: str | None = field(default=None, metadata=_p(
        SOUND, "prompt played first (default: the box's greeting)"))
    max: float | None = field(default=None, metadata=_p(
        SecondsKind(1, 3600), "longest message (default: the box's max_seconds)"))
    beep: bool = field(default=True, metadata=_p(BoolKind(), "beep after the greeting"))
    finish: str | None = field(default="#", metadata=_p(KeyKind(), "key that ends the message"))


ACTION_TYPES: dict[str, type[Action]] = {
    cls.verb: cls
    for cls in (Answer, Ring, Hangup, Play, Say, Gather, Record, Set, Goto, Wait, Reject, Log,
                Dial, Transfer, RecordCall, Queue, Agent, Conference, Voicemail)
}
"""Every verb of protocol v1, in documentation order."""

for _cls in ACTION_TYPES.values():
    _cls.params = tuple(
        Param(f.name, *f.metadata["pbx"]) for f in dataclasses.fields(_cls) if "pbx" in f.metadata
    )


def _defaults(cls: type[Action]) -> dict[str, Any]:
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


# --- text form -------------------------------------------------------------------------------



def _show(value: JSON) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value)


def _bad(verb: str, p: Param, value: JSON, exc: ValueError) -> str:
    if isinstance(exc, PathError) and isinstance(p.kind, PathKind):
        return f"{verb}: path must stay inside the {p.kind.where} directory, got {_show(value)}"
    if isinstance(p.kind, PairsKind):
        return f"{verb}: expected {p.kind.describe()}, got {_show(value)}"
    label = p.metavar if p.positional else p.name
    return f"{verb}: {label} must be {p.kind.describe()}, got {_show(value)}"


def _value(verb: str, p: Param, raw: JSON, text: bool) -> Any:
    try:
        return p.kind.parse_text(raw) if text else p.kind.parse_json(raw)
    except ValueError as exc:
        raise ActionError(None, _bad(verb, p, raw, exc)) from None


def _unknown(verb: str) -> str:
    close = difflib.get_close_matches(verb, ACTION_TYPES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown action {verb!r}{hint}"


def _build(cls: type[Action], values: dict[str, Any]) -> Action:
    action = cls(**values)
    problem = action.check()
    if problem is not None:
        raise ActionError(None, problem)
    return action


def _from_words(words: Sequence[str]) -> Action:
    verb, args = words[0], words[1:]
    cls = ACTION_TYPES.get(verb)
    if cls is None:
        raise ActionError(None, _unknown(verb))
    values: dict[str, Any] = {}
    positional = [p for p in cls.params if p.positional]
    options = {p.name: p for p in cls.params if not p.positional}
    if positional and isinstance(positional[0].kind, PairsKind):
        p = positional[0]
        pairs: dict[str, str] = {}
        for word in args:
            name, value = _value(verb, p, word, True)
            if name in pairs:
                raise ActionError(None, f"{verb}: {name!r} given twice")
            pairs[name] = value
        if not pairs:
            raise ActionError(None, f"{verb}: missing {p.metavar}")
        return _build(cls, {p.name: pairs})
    rest: list[str] = []
    for word in args:
        m = OPTION.fullmatch(word) if options else None
        if m is None:
            rest.append(word)
            continue
        name, raw = m.groups()
        if name not in options:
            raise ActionError(None, f"{verb}: unknown option {name!r} (options: "
                                    f"{', '.join(options)})")
        if name in values:
            raise ActionError(None, f"{verb}: option {name!r} given twice")
        values[name] = _value(verb, options[name], raw, True)
    for p in positional:
        if not rest:
            raise ActionError(None, f"{verb}: missing {p.metavar}")
        if p.join:
            values[p.name] = _value(verb, p, " ".join(rest), True)
            rest = []
        elif p.variadic:
            values[p.name] = tuple(_value(verb, p, w, True) for w in rest)
            rest = []
        else:
            values[p.name] = _value(verb, p, rest.pop(0), True)
    if rest:
        raise ActionError(None, f"{verb}: unexpected argument {rest[0]!r}")
    return _build(cls, values)


def parse_action_line(text: str) -> Action:
    """Parse one action in text form (e.g. a route's `fallback = ["play sorry", "hangup"]`)."""
    try:
        words = split_words(text.strip())
    except ValueError as exc:
        raise ActionError(None, str(exc)) from None
    if not words:
        raise ActionError(None, "empty action")
    return _from_words(words)


def _parse_text(text: str) -> list[tuple[int, Action]]:
    out: list[tuple[int, Action]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        try:
            words = split_words(line.rstrip("\r"))
            if words:
                out.append((lineno, _from_words(words)))
        except ActionError as exc:
            raise ActionError(lineno, exc.message) from None
        except ValueError as exc:
            raise ActionError(lineno, str(exc)) from None
    return out


# --- JSON form -------------------------------------------------------------------------------

def from_json(obj: JSON) -> Action:
    """Validate one action object ({"action": VERB, ...}) and build the action."""
    if not isinstance(obj, dict):
        raise ActionError(None, f"expected an action object, got {_show(obj)}")
    verb = obj.get("action")
    if not isinstance(verb, str):
        raise ActionError(None, "missing 'action' (the verb)")
    cls = ACTION_TYPES.get(verb)
    if cls is None:
        raise ActionError(None, _unknown(verb))
    by_name = {p.name: p for p in cls.params}
    values: dict[str, Any] = {}
    for key, raw in obj.items():
        if key == "action":
            continue
        p = by_name.get(key)
        if p is None:
            raise ActionError(None, f"{verb}: unknown option {key!r}")
        if p.variadic and not p.join:
            if not isinstance(raw, list) or not raw:
                raise ActionError(None, f"{verb}: {key} must be a non-empty array, got "
                                        f"{_show(raw)}")
            values[key] = tuple(_value(verb, p, v, False) for v in raw)
        else:
            values[key] = _value(verb, p, raw, False)
    missing = [p.name for p in cls.params if p.name not in values and p.name not in
               _defaults(cls)]
    if missing:
        raise ActionError(None, f"{verb}: missing {missing[0]!r}")
    return _build(cls, values)


def _no_constants(name: str) -> Any:
    raise ActionError(None, f"invalid JSON: {name} is not a number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ActionError(None, f"duplicate key {key!r}")
        out[key] = value
    return out


def _parse_json(text: str) -> list[tuple[int | None, Action]]:
    try:
        doc = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ActionError(exc.lineno, f"invalid JSON: {exc.msg}") from None
    if isinstance(doc, dict) and "action" not in doc:
        if set(doc) != {"actions"} or not isinstance(doc["actions"], list):
            raise ActionError(None, 'a JSON object must be one action or {"actions": [...]}')
        doc = doc["actions"]
    items = doc if isinstance(doc, list) else [doc]
    out: list[tuple[int | None, Action]] = []
    for index, item in enumerate(items, start=1):
        try:
            out.append((None, from_json(item)))
        except ActionError as exc:
            raise ActionError(None, f"action {index}: {exc.message}") from None
    return out


def parse_actions(output: bytes | str, *, max_actions: int = MAX_ACTIONS) -> list[Action]:
    """Parse and validate a script's stdout (text or JSON form) into actions."""
    if isinstance(output, bytes):
        try:
            text = output.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = output[: exc.start].count(b"\n") + 1
            raise ActionError(bad_line, "output is not valid UTF-8") from None
    else:
        text = output
    is_json = text.lstrip()[:1] in ("[", "{")
    located = _parse_json(text) if is_json else _parse_text(text)
    actions: list[Action] = []
    for index, (line, action) in enumerate(located, start=1):
        where = "" if line is not None else f"action {index}: "
        if index > max_actions:
            raise ActionError(line, f"{where}more than {max_actions} actions")
        if actions and actions[-1].has_outcome:
            last = actions[-1].verb
            raise ActionError(line, f"{where}{action.verb}: would never run: {last} has an "
                                    "outcome and ends the list")
        actions.append(action)
    return actions


def actions_schema() -> dict[str, JSON]:
    """The JSON Schema of the JSON form, generated from the classes above."""
    rows = [(verb, cls.__doc__ or "", cls.params, _defaults(cls))
            for verb, cls in ACTION_TYPES.items()]
    return build_schema(rows, MAX_ACTIONS)
