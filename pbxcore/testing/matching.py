"""Expected actions of a fixture step, and how they are compared with what a script printed.

An expected action is written like an output line (`gather max=1 prompt=menu`) or as a JSON
action object. Plain lines are parsed with the script contract's own parser and compared as
parsed actions, so spacing, quoting, option order, defaults spelled out (`loop=1`) and text vs
JSON output make no difference. When a step names its match mode, a line may use `*` in argument
values as a glob (`play recording:*`, `log call ended: *`): such a line is kept as words, its
verb and option names are still checked, and each value is compared with the value the script
gave (rendered as text) where it has a `*`, or parsed and compared exactly where it has none.

List modes: ``exact`` (same actions, same order), ``prefix`` (the output starts with them),
``contains`` (they appear in the output as one run, in order), ``subset`` (each appears
somewhere in the output, any order). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pbxcore.script.actions import (
    ACTION_TYPES,
    Action,
    ActionError,
    from_json,
    parse_action_line,
)
from pbxcore.script.schema import VAR_NAME_RE, KeyKind, PairsKind, Param
from pbxcore.script.words import OPTION, split_words

MATCH_MODES = ("exact", "prefix", "subset", "contains")


@dataclass(frozen=True)
class ExpectedAction:
    """One expected action: a parsed action, or (with a glob) the words of a pattern line."""

    text: str
    """The line as shown in reports (canonical text for parsed actions)."""
    action: Action | None = None
    """The parsed action when the line has no glob."""
    verb: str = ""
    """Pattern lines: the verb."""
    positional: tuple[str, ...] = ()
    """Pattern lines: the positional words, in order."""
    options: Mapping[str, str] = field(default_factory=dict)
    """Pattern lines: option (or `set` variable) name -> value pattern."""

    @property
    def is_pattern(self) -> bool:
        return self.action is None


def expected_action(item: str | Mapping[str, Any], *, glob: bool) -> ExpectedAction:
    """Parse one entry of `expect`; ActionError (or ValueError) says what is wrong with it."""
    if not isinstance(item, str):
        action = from_json(dict(item))
        return ExpectedAction(action.to_text(), action)
    if not (glob and "*" in item):
        action = parse_action_line(item)
        return ExpectedAction(action.to_text(), action)
    words = split_words(item.strip())
    if not words:
        raise ActionError(None, "empty action")
    verb, args = words[0], words[1:]
    cls = ACTION_TYPES.get(verb)
    if cls is None:
        parse_action_line(verb)  # raises "unknown action 'x' (did you mean ...)"
        raise ActionError(None, f"unknown action {verb!r}")  # pragma: no cover
    options: dict[str, str] = {}
    positional: list[str] = []
    params = _options(cls)
    pairs = _pairs_param(cls)
    for word in args:
        if pairs is not None:
            name, eq, value = word.partition("=")
            if not eq or not re.fullmatch(VAR_NAME_RE, name):
                raise ActionError(None, f"{verb}: expected NAME=VALUE, got {word!r}")
        else:
            m = OPTION.fullmatch(word) if params else None
            if m is None:
                positional.append(word)
                continue
            name, value = m.groups()
            if name not in params:
                raise ActionError(None, f"{verb}: unknown option {name!r} (options: "
                                        f"{', '.join(params)})")
        if name in options:
            raise ActionError(None, f"{verb}: {name!r} given twice")
        if "*" not in value:
            p = pairs or params[name]
            try:
                p.kind.parse_text(word if pairs else value)
            except ValueError:
                raise ActionError(None, f"{verb}: {name} must be {p.kind.describe()}, "
                                        f"got {value!r}") from None
        options[name] = value
    return ExpectedAction(item.strip(), None, verb, tuple(positional), options)


def _options(cls: type[Action]) -> dict[str, Param]:
    return {p.name: p for p in cls.params if not p.positional}


def _pairs_param(cls: type[Action]) -> Param | None:
    for p in cls.params:
        if isinstance(p.kind, PairsKind):
            return p
    return None


def _glob(pattern: str, text: str) -> bool:
    """`*` matches any run of characters (also none); everything else is literal."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _render(p: Param, value: Any) -> str:
    if value is None and not isinstance(p.kind, KeyKind):
        return ""
    return p.kind.to_text(value)


def _value_matches(p: Param, pattern: str, value: Any) -> bool:
    if "*" in pattern:
        return _glob(pattern, _render(p, value))
    try:
        return bool(p.kind.parse_text(pattern) == value)
    except ValueError:
        return False


def _defaults(cls: type[Action]) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


def matches(expected: ExpectedAction, actual: Action) -> bool:
    """Does the script's action satisfy this expected action?"""
    if expected.action is not None:
        return expected.action == actual
    cls = type(actual)
    if cls.verb != expected.verb:
        return False
    pairs = _pairs_param(cls)
    if pairs is not None:
        got: Mapping[str, str] = getattr(actual, pairs.name)
        return set(got) == set(expected.options) and all(
            _glob(pat, got[name]) for name, pat in expected.options.items())
    defaults = _defaults(cls)
    for name, p in _options(cls).items():
        value = getattr(actual, name)
        if name in expected.options:
            if not _value_matches(p, expected.options[name], value):
                return False
        elif name in defaults and value != defaults[name]:
            return False
    return _positional_matches(cls, list(expected.positional), actual)


def _positional_matches(cls: type[Action], words: list[str], actual: Action) -> bool:
    for p in (p for p in cls.params if p.positional):
        value = getattr(actual, p.name)
        if p.join:
            if not _glob(" ".join(words), _render(p, value)):
                return False
            words = []
        elif p.variadic:
            if len(words) != len(value) or not all(
                    _value_matches(p, w, v) for w, v in zip(words, value, strict=True)):
                return False
            words = []
        else:
            if not words or not _value_matches(p, words.pop(0), value):
                return False
    return not words


def match_list(mode: str, expected: Sequence[ExpectedAction], actual: Sequence[Action]) -> bool:
    """Compare the whole list of a step in one of MATCH_MODES."""
    n = len(expected)
    if mode == "exact":
        return n == len(actual) and _pairwise(expected, actual)
    if mode == "prefix":
        return n <= len(actual) and _pairwise(expected, actual[:n])
    if mode == "contains":
        return any(_pairwise(expected, actual[i:i + n]) for i in range(len(actual) - n + 1))
    if mode == "subset":
        return _assign(expected, actual)
    raise ValueError(f"unknown match mode {mode!r}")


def _pairwise(expected: Sequence[ExpectedAction], actual: Sequence[Action]) -> bool:
    return all(matches(e, a) for e, a in zip(expected, actual, strict=True))


def _assign(expected: Sequence[ExpectedAction], actual: Sequence[Action]) -> bool:
    """Each expected action matched to a different actual one (bipartite matching, Kuhn)."""
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j, act in enumerate(actual):
            if j not in seen and matches(expected[i], act):
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(place(i, set()) for i in range(len(expected)))


def diff(mode: str, expected: Sequence[ExpectedAction], actual: Sequence[Action]) -> list[str]:
    """A line diff: '  ' both sides, '- ' expected but missing, '+ ' printed but not expected.

    Aligned by the longest common subsequence under `matches`. In the modes that allow more
    output than expected (prefix, contains, subset) unmatched output lines are context ('  ').
    """
    if mode == "subset":
        missing = [e for e in expected if not any(matches(e, a) for a in actual)]
        return [f"- {e.text}" for e in missing] + [f"  {a.to_text()}" for a in actual]
    rows, cols = len(expected), len(actual)
    lcs = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            lcs[i][j] = (lcs[i + 1][j + 1] + 1 if matches(expected[i], actual[j])
                         else max(lcs[i + 1][j], lcs[i][j + 1]))
    out: list[str] = []
    i = j = 0
    while i < rows or j < cols:
        if i < rows and j < cols and matches(expected[i], actual[j]):
            out.append(f"  {actual[j].to_text()}")
            i, j = i + 1, j + 1
        elif i < rows and (j == cols or lcs[i + 1][j] >= lcs[i][j + 1]):
            out.append(f"- {expected[i].text}")
            i += 1
        else:
            unexpected = mode == "exact" or (mode == "prefix" and j < rows)
            out.append(f"{'+ ' if unexpected else '  '}{actual[j].to_text()}")
            j += 1
    return out
