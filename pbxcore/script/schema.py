"""The declarative value kinds of the action grammar, and the JSON Schema built from them.

Every action parameter is described once, by a :class:`Param` holding a :class:`Kind`. The text
parser, the JSON parser, the serializers and the JSON Schema (docs/actions.schema.json) all read
that one table, so the validator and the published schema cannot drift apart: a test regenerates
the schema and compares it with the committed file.

Pure module: no I/O. A kind's ``parse_*`` raises ``ValueError`` with no text; the caller builds
the message from ``describe()`` so every error reads "VERB: NAME must be DESCRIPTION, got VALUE".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""A value as produced by json.loads (dict, list, str, int, float, bool or None)."""

_INT_RE = re.compile(r"[0-9]{1,9}")
_NUM_RE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")
DTMF_KEYS = "0123456789*#"


class Kind:
    """How one parameter value is written in text and in JSON, and checked."""

    def describe(self) -> str:
        raise NotImplementedError

    def parse_text(self, token: str) -> Any:
        raise NotImplementedError

    def parse_json(self, value: JSON) -> Any:
        raise NotImplementedError

    def to_text(self, value: Any) -> str:
        return str(value)

    def to_json(self, value: Any) -> JSON:
        return value

    def schema(self) -> dict[str, JSON]:
        raise NotImplementedError


def _is_json_int(value: JSON) -> bool:
    # bool is an int subclass in Python but a distinct type in JSON.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


@dataclass(frozen=True)
class IntKind(Kind):
    lo: int
    hi: int

    def describe(self) -> str:
        return f"an integer {self.lo}..{self.hi}"

    def _check(self, n: int) -> int:
        if not self.lo <= n <= self.hi:
            raise ValueError
        return n

    def parse_text(self, token: str) -> int:
        # Not int(): it also accepts "+5", " 5", "1_000" and non-ASCII digits.
        if not _INT_RE.fullmatch(token):
            raise ValueError
        return self._check(int(token))

    def parse_json(self, value: JSON) -> int:
        if not _is_json_int(value):
            raise ValueError
        return self._check(int(value))

    def schema(self) -> dict[str, JSON]:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}


@dataclass(frozen=True)
class SecondsKind(Kind):
    """A duration in seconds; decimals allowed (timeout=1.5)."""

    lo: float
    hi: float

    def describe(self) -> str:
        return f"a number of seconds {_num(self.lo)}..{_num(self.hi)}"

    def _check(self, x: float) -> float:
        if not self.lo <= x <= self.hi:
            raise ValueError
        return x

    def parse_text(self, token: str) -> float:
        # Not float(): it also accepts "nan", "inf", "1e3" and "-0".
        if not _NUM_RE.fullmatch(token):
            raise ValueError
        return self._check(float(token))

    def parse_json(self, value: JSON) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        if not math.isfinite(value):
            raise ValueError
        return self._check(float(value))

    def to_text(self, value: Any) -> str:
        return _num(value)

    def to_json(self, value: Any) -> JSON:
        if value is None:  # an optional duration left unset (queue timeout=): null
            return None
        return int(value) if float(value).is_integer() else value

    def schema(self) -> dict[str, JSON]:
        return {"type": "number", "minimum": _jnum(self.lo), "maximum": _jnum(self.hi)}


@dataclass(frozen=True)
class EnumKind(Kind):
    values: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + "|".join(self.values)

    def parse_text(self, token: str) -> str:
        if token not in self.values:
            raise ValueError
        return token

    def parse_json(self, value: JSON) -> str:
        if not isinstance(value, str):
            raise ValueError
        return self.parse_text(value)

    def schema(self) -> dict[str, JSON]:
        return {"enum": list(self.values)}


@dataclass(frozen=True)
class BoolKind(Kind):
    """yes|no in text, true|false in JSON."""

    def describe(self) -> str:
        return "yes or no (true or false in JSON)"

    def parse_text(self, token: str) -> bool:
        if token not in ("yes", "no"):
            raise ValueError
        return token == "yes"

    def parse_json(self, value: JSON) -> bool:
        if not isinstance(value, bool):
            raise ValueError
        return value

    def to_text(self, value: Any) -> str:
        return "yes" if value else "no"

    def schema(self) -> dict[str, JSON]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class KeyKind(Kind):
    """One DTMF key, or none (null in JSON) to switch the key off."""

    def describe(self) -> str:
        return "one DTMF key 0-9 * # or none"

    def parse_text(self, token: str) -> str | None:
        if token == "none":
            return None
        if len(token) != 1 or token not in DTMF_KEYS:
            raise ValueError
        return token

    def parse_json(self, value: JSON) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value == "none":
            raise ValueError
        return self.parse_text(value)

    def to_text(self, value: Any) -> str:
        return "none" if value is None else str(value)

    def schema(self) -> dict[str, JSON]:
        return {"anyOf": [{"type": "null"}, {"enum": list(DTMF_KEYS)}]}


@dataclass(frozen=True)
class TextKind(Kind):
    """Free text; `pattern`, when set, is what the value must fully match."""

    max_len: int
    pattern: str | None = None
    what: str = "text"

    def describe(self) -> str:
        return f"{self.what} of at most {self.max_len} characters"

    def parse_text(self, token: str) -> str:
        if not 1 <= len(token) <= self.max_len or "\x00" in token:
            raise ValueError
        if self.pattern is not None and not re.fullmatch(self.pattern, token):
            raise ValueError
        return token

    def parse_json(self, value: JSON) -> str:
        if not isinstance(value, str):
            raise ValueError
        return self.parse_text(value)

    def schema(self) -> dict[str, JSON]:
        # "\x00" is excluded by the pattern when none is given: JSON Schema has no "not contains".
        pat = "^[^\\u0000]*$" if self.pattern is None else f"^(?:{self.pattern})$"
        return {"type": "string", "minLength": 1, "maxLength": self.max_len, "pattern": pat}


PATH_ERROR = "path must stay inside the {where} directory"


class PathError(ValueError):
    """A file argument that would leave its directory (absolute, '..', NUL)."""


def check_relative_path(name: str) -> str:
    """Syntax check of a file argument: relative, no '..' component, no NUL or control char."""
    if (
        not name
        or len(name) > 255
        or name.startswith("/")
        or any(c < " " or c == "\x7f" for c in name)
        or ".." in name.split("/")
    ):
        raise PathError(name)
    return name


# The JSON Schema form of check_relative_path (kept next to it on purpose).
_PATH_PATTERN = r"^(?!/)(?!(?:.*/)?\.\.(?:/|$))[^\u0000-\u001f\u007f]{1,255}$"


@dataclass(frozen=True)
class PathKind(Kind):
    """A file name relative to a directory the engine owns (sounds, scripts)."""

    where: str

    def describe(self) -> str:
        return f"a relative path inside the {self.where} directory"

    def parse_text(self, token: str) -> str:
        return check_relative_path(token)

    def parse_json(self, value: JSON) -> str:
        if not isinstance(value, str):
            raise ValueError
        return check_relative_path(value)

    def schema(self) -> dict[str, JSON]:
        return {"type": "string", "pattern": _PATH_PATTERN}


@dataclass(frozen=True)
class ReasonKind(Kind):
    """busy|decline|unavailable or a SIP final status 400..699."""

    names: tuple[str, ...]

    def describe(self) -> str:
        return "|".join(self.names) + " or a SIP status 400..699"

    def parse_text(self, token: str) -> str:
        if token in self.names:
            return token
        if re.fullmatch(r"[4-6][0-9][0-9]", token):
            return token
        raise ValueError

    def parse_json(self, value: JSON) -> str:
        if _is_json_int(value) and 400 <= int(value) <= 699:
            return str(int(value))
        if isinstance(value, str):
            return self.parse_text(value)
        raise ValueError

    def schema(self) -> dict[str, JSON]:
        return {
            "anyOf": [
                {"enum": list(self.names)},
                {"type": "integer", "minimum": 400, "maximum": 699},
                {"type": "string", "pattern": "^[4-6][0-9][0-9]$"},
            ]
        }


VAR_NAME_RE = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
VAR_VALUE_MAX = 1024


@dataclass(frozen=True)
class PairsKind(Kind):
    """NAME=VALUE... in text, an object of strings in JSON (the `set` action)."""

    def describe(self) -> str:
        return (
            f"NAME=VALUE pairs (NAME: letters, digits, _; VALUE: at most {VAR_VALUE_MAX} characters)"
        )

    def parse_text(self, token: str) -> tuple[str, str]:
        name, eq, value = token.partition("=")
        return self._pair(name, value, eq == "=")

    def _pair(self, name: str, value: str, ok: bool = True) -> tuple[str, str]:
        if not ok or not re.fullmatch(VAR_NAME_RE, name):
            raise ValueError
        if len(value) > VAR_VALUE_MAX or "\x00" in value:
            raise ValueError
        return name, value

    def parse_json(self, value: JSON) -> dict[str, str]:
        if not isinstance(value, dict) or not value:
            raise ValueError
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(v, str):
                raise ValueError
            name, val = self._pair(k, v)
            out[name] = val
        return out

    def schema(self) -> dict[str, JSON]:
        return {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": f"^{VAR_NAME_RE}$"},
            "additionalProperties": {
                "type": "string",
                "maxLength": VAR_VALUE_MAX,
                "pattern": "^[^\\u0000]*$",
            },
        }


@dataclass(frozen=True)
class Param:
    """One parameter of an action: how it is named, written and checked."""

    name: str
    """Option name in text (`max=4`) and key in JSON ("max": 4)."""
    kind: Kind
    doc: str
    metavar: str | None = None
    """Set for positional arguments: the placeholder shown in messages (FILE, SECONDS)."""
    variadic: bool = False
    """Positional that takes all remaining words (one or more): a list in JSON."""
    join: bool = False
    """Variadic words joined by one space into a single string (`log TEXT...`)."""

    @property
    def positional(self) -> bool:
        return self.metavar is not None


def build_schema(actions: Sequence[tuple[str, str, Sequence[Param], Mapping[str, Any]]],
                 max_actions: int) -> dict[str, JSON]:
    """JSON Schema (2020-12) for an action list, from (verb, doc, params, defaults) rows."""
    defs: dict[str, JSON] = {}
    for verb, doc, params, defaults in actions:
        props: dict[str, JSON] = {"action": {"const": verb}}
        required = ["action"]
        for p in params:
            item = p.kind.schema()
            if p.variadic and not p.join:
                item = {"type": "array", "minItems": 1, "items": item}
            item = {"description": p.doc, **item}
            if p.name in defaults:
                item["default"] = p.kind.to_json(defaults[p.name])
            else:
                required.append(p.name)
            props[p.name] = item
        defs[verb] = {
            "description": doc,
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }
    one = {"oneOf": [{"$ref": f"#/$defs/{verb}"} for verb, *_ in actions]}
    array = {"type": "array", "maxItems": max_actions, "items": {"$ref": "#/$defs/action"}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://pbxcore.invalid/protocol/v1/actions.schema.json",
        "title": "pbxcore script actions, protocol v1",
        "description": (
            "What a script may print on stdout in JSON form: an array of actions, one action, "
            "or {\"actions\": [...]}. Generated from pbxcore/script/actions.py; do not edit. "
            "Rules checked by the validator only: gather min must not exceed max; say number "
            "takes an integer and say digits only keys 0-9 * #; no action may follow an action "
            "with an outcome (gather, record, goto, dial, transfer, queue); agent reason= only "
            "with pause or unpause; no duplicate keys in an object."
        ),
        "oneOf": [
            array,
            {"$ref": "#/$defs/action"},
            {
                "type": "object",
                "properties": {"actions": array},
                "required": ["actions"],
                "additionalProperties": False,
            },
        ],
        "$defs": {"action": one, **defs},
    }


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _jnum(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x
