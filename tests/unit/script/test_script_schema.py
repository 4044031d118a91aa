"""docs/actions.schema.json is generated from the action table, and agrees with the validator.

No jsonschema dependency: a small interpreter of exactly the keywords the generator emits
checks random documents against both the schema and parse_actions.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcore.script.actions import ACTION_TYPES, ActionError, actions_schema, parse_actions
from pbxcore.script.events import (
    BASE_ENV,
    EVENT_NAMES,
    GATHER_RESULTS,
    HANGUP_RESULTS,
    RECORD_RESULTS,
    Event,
    event_env,
    event_from_dict,
    event_json,
)
from pbxcore.script.schema import (
    BoolKind,
    EnumKind,
    IntKind,
    KeyKind,
    Kind,
    PairsKind,
    PathKind,
    ReasonKind,
    SecondsKind,
    TextKind,
)

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_FILE = ROOT / "docs" / "actions.schema.json"
REGENERATE = (
    ".venv/bin/python -c 'import json; from pbxcore.script.actions import actions_schema; "
    "print(json.dumps(actions_schema(), indent=2))' > docs/actions.schema.json"
)
KEYWORDS = {"$schema", "$id", "title", "description", "default", "$defs", "$ref", "oneOf",
            "anyOf", "type", "const", "enum", "minimum", "maximum", "minLength", "maxLength",
            "pattern", "items", "minItems", "maxItems", "properties", "required",
            "additionalProperties", "minProperties", "propertyNames"}


def test_committed_schema_is_the_generated_one() -> None:
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == actions_schema(), f"regenerate it: {REGENERATE}"


def _keywords(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set(node)
        for key, value in node.items():
            if key not in ("properties", "$defs", "default"):
                found |= _keywords(value)
            elif key != "default":
                for sub in value.values():
                    found |= _keywords(sub)
        return found
    if isinstance(node, list):
        return set().union(*(_keywords(v) for v in node)) if node else set()
    return set()


def test_schema_uses_only_keywords_the_checker_knows() -> None:
    assert _keywords(actions_schema()) <= KEYWORDS


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (not isinstance(value, bool) and isinstance(value, int | float)
                and float(value).is_integer())
    return {
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None, "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }[kind](value)


def valid(value: Any, node: dict[str, Any], root: dict[str, Any]) -> bool:
    """JSON Schema 2020-12, restricted to the keywords in KEYWORDS."""
    if "$ref" in node:
        return valid(value, root["$defs"][node["$ref"].rsplit("/", 1)[1]], root)
    checks = [
        ("oneOf", lambda s: sum(valid(value, sub, root) for sub in s) == 1),
        ("anyOf", lambda s: any(valid(value, sub, root) for sub in s)),
        ("type", lambda s: _type_ok(value, s)),
        ("const", lambda s: value == s and type(value) is type(s)),
        ("enum", lambda s: isinstance(value, str) and value in s),
    ]
    if not all(check(node[key]) for key, check in checks if key in node):
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < node.get("minimum", value) or value > node.get("maximum", value):
            return False
    if isinstance(value, str):
        if not node.get("minLength", 0) <= len(value) <= node.get("maxLength", len(value)):
            return False
        if "pattern" in node and not re.search(node["pattern"], value):
            return False
    if isinstance(value, list):
        if not node.get("minItems", 0) <= len(value) <= node.get("maxItems", len(value)):
            return False
        if "items" in node and not all(valid(v, node["items"], root) for v in value):
            return False
    if isinstance(value, dict):
        props = node.get("properties", {})
        if any(r not in value for r in node.get("required", [])):
            return False
        if len(value) < node.get("minProperties", 0):
            return False
        for key, sub in value.items():
            if "propertyNames" in node and not valid(key, node["propertyNames"], root):
                return False
            if key in props:
                if not valid(sub, props[key], root):
                    return False
            elif node.get("additionalProperties") is False:
                return False
            elif isinstance(node.get("additionalProperties"), dict):
                if not valid(sub, node["additionalProperties"], root):
                    return False
    return True


SCHEMA = actions_schema()
# Rules the validator checks beyond the schema (listed in the schema's description).
VALIDATOR_ONLY = ("min must not exceed max", "VALUE must be", "would never run",
                  "goes with pause or unpause")

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 800), st.sampled_from([0, 1, 60, 64, 65, 100, 101, 399, 400, 600, 601, 699, 700, 3600, 3601]), st.sampled_from([0.5, 4.0, 1e9, -0.0]),
    st.sampled_from(["", "#", "*", "7", "none", "yes", "busy", "486", "300", "digits", "number",
                     "welcome", "a/b.wav", "../x", "/etc/passwd", "a\x00b", "12#", "-5", "x" * 40,
                     "name", "1bad", "fr"]),
)
_values = st.one_of(
    _scalar, _scalar, st.lists(_scalar, max_size=3),
    st.dictionaries(st.sampled_from(["a", "B_2", "1x", "n"]), _scalar, max_size=2))
MINIMAL: dict[str, dict[str, Any]] = {
    "answer": {}, "ring": {}, "hangup": {}, "gather": {}, "record": {},
    "play": {"files": ["a"]}, "say": {"kind": "digits", "value": "1"},
    "set": {"vars": {"a": "1"}}, "goto": {"script": "x"}, "wait": {"seconds": 1},
    "reject": {"reason": "busy"}, "log": {"text": "hi"}, "plya": {},
    "dial": {"targets": ["1002"]}, "transfer": {"target": "1002"},
    "record_call": {"what": "start"}, "queue": {"name": "support"},
    "agent": {"op": "pause", "extension": "1001"},
    "conference": {"room": "sales"},
    "voicemail": {"box": "sales"},
}


def _edges(kind: Kind) -> list[Any]:
    """Values on and just across each bound of a kind, read from the kind's own numbers."""
    if isinstance(kind, IntKind):
        return [kind.lo - 1, kind.lo, kind.hi, kind.hi + 1, float(kind.hi), kind.lo + 0.5]
    if isinstance(kind, SecondsKind):
        return [kind.lo - 0.5, kind.lo, kind.hi, kind.hi + 0.5, 1.25]
    if isinstance(kind, EnumKind):
        return [*kind.values, kind.values[0].upper()]
    if isinstance(kind, ReasonKind):
        return [*kind.names, 399, 400, 699, 700, "399", "400", "699", "700", 486.0, "4866"]
    if isinstance(kind, KeyKind):
        return [None, "none", "#", "*", "0", "9", "a", "12", ""]
    if isinstance(kind, PathKind):
        return ["a", "a/b.wav", "a/./b", "..", "a/..", "../a", "a/../b", "/a", "a\x00", "a\nb",
                "a\x7f", ".../x", "..a", "x" * 255, "x" * 256, ""]
    if isinstance(kind, TextKind):
        return ["1", "12#", "-5", "--5", "*", "a", "", "x" * kind.max_len,
                "x" * (kind.max_len + 1), "a\x00", "1" * 16]
    if isinstance(kind, PairsKind):
        return [{"a": "1"}, {}, {"1x": "1"}, {"_": ""}, {"a": 1}, {"a": "x\x00"},
                {"a": "x" * 1024}, {"a": "x" * 1025}, {"A" * 64: "v"}, {"A" * 65: "v"}]
    if isinstance(kind, BoolKind):
        return [True, False, "yes", 1]
    raise AssertionError(kind)




@st.composite
def _action(draw: st.DrawFn) -> dict[str, Any]:
    """A valid action with one or two keys removed, added, or set to an edge value."""
    verb = draw(st.sampled_from(sorted(MINIMAL)))
    params = {p.name: p for p in ACTION_TYPES[verb].params} if verb in ACTION_TYPES else {}
    doc = {"action": verb, **MINIMAL[verb]}
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from([*params, "bogus"]))
        p = params.get(key)
        if draw(st.integers(0, 5)) == 0 and key in doc:
            del doc[key]
        elif p is None or draw(st.integers(0, 4)) == 0:
            doc[key] = draw(_values)
        elif p.variadic and not p.join:
            doc[key] = draw(st.lists(st.sampled_from(_edges(p.kind)), max_size=3))
        else:
            doc[key] = draw(st.sampled_from(_edges(p.kind)))
    return doc


def _agree(doc: Any) -> None:
    text = json.dumps(doc)
    try:
        parse_actions(text)
        accepted, message = True, ""
    except ActionError as exc:
        accepted, message = False, str(exc)
    by_schema = valid(doc, SCHEMA, SCHEMA)
    if accepted:
        assert by_schema, f"validator accepts what the schema rejects: {text}"
    elif by_schema:
        assert any(rule in message for rule in VALIDATOR_ONLY), (text, message)


@settings(max_examples=1500)
@given(_action())
def test_schema_and_validator_agree_on_one_action(doc: dict[str, Any]) -> None:
    _agree(doc)


@settings(max_examples=200)
@given(st.lists(_action(), max_size=3))
def test_schema_and_validator_agree_on_lists(docs: list[dict[str, Any]]) -> None:
    _agree(docs)
    _agree({"actions": docs})


def test_schema_and_validator_agree_on_every_edge_value() -> None:
    for verb, cls in ACTION_TYPES.items():
        for p in cls.params:
            values = _edges(p.kind)
            if p.variadic and not p.join:
                values = [[v] for v in values] + [["a", v] for v in values] + [[], "a"]
            for value in [*values, None, 3, "s", [], {}]:
                _agree({**MINIMAL[verb], "action": verb, p.name: value})
            _agree({"action": verb})


def test_agreement_on_handpicked_documents() -> None:
    for doc in [
        [{"action": "play", "files": ["welcome", "menu/main"], "loop": 2}],
        {"action": "gather", "max": 4, "finish": "#", "prompt": "enter"},
        {"action": "gather", "max": 2, "min": 3},  # validator only
        {"action": "say", "kind": "number", "value": "12#"},  # validator only
        {"action": "record", "finish": None, "beep": False},
        {"action": "set", "vars": {"a": "1", "1x": "2"}},
        {"action": "reject", "reason": 486},
        {"action": "reject", "reason": True},
        {"actions": [{"action": "answer"}], "extra": 1},
        [{"action": "wait", "seconds": 3601}],
        [{"action": "ring"}] * 101,
    ]:
        _agree(doc)


# --- docs/protocol.md: every example is machine-checked ---------------------------------------

DOC = (ROOT / "docs" / "protocol.md").read_text()
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(kind: str) -> list[str]:
    return [body for k, body in BLOCK.findall(DOC) if k == kind]


def test_doc_action_examples_parse_and_cover_every_verb() -> None:
    seen: set[str] = set()
    for body in _blocks("actions"):
        seen |= {a.verb for a in parse_actions(body)}
    for body in _blocks("json"):
        doc = json.loads(body)
        assert valid(doc, SCHEMA, SCHEMA), body
        seen |= {a.verb for a in parse_actions(body)}
    assert seen == set(ACTION_TYPES)
    for verb in ACTION_TYPES:
        assert f"\n`{verb}" in DOC or f" `{verb}`" in DOC, f"{verb} is not documented"


def test_doc_event_example_is_a_valid_event() -> None:
    (body,) = _blocks("event")
    ev = event_from_dict(json.loads(body))
    assert json.loads(event_json(ev)) == json.loads(body)


def test_doc_environment_table_names_every_variable() -> None:
    env = event_env(Event("incoming", "c", vars={"x": "1"}), {})
    for name in env:
        if name.startswith("PBX_") and not name.startswith("PBX_VAR_"):
            assert f"| `{name}` |" in DOC, name
    for name in BASE_ENV:
        assert f"`{name}=" in DOC
    for line in _blocks("env")[0].splitlines():
        name, _, _ = line.partition("=")
        assert name.startswith("PBX_") and f"`{name}`" in DOC, line


def test_doc_names_every_result_value_and_default() -> None:
    for value in (*GATHER_RESULTS, *RECORD_RESULTS, *HANGUP_RESULTS, *EVENT_NAMES):
        assert f"`{value}`" in DOC, value
    for verb, cls in ACTION_TYPES.items():
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING and f.default is not None:
                p = next(p for p in cls.params if p.name == f.name)
                assert f"`{f.name}={p.kind.to_text(f.default)}`" in DOC, (verb, f.name)
