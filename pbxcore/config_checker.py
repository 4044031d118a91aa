"""The checker every pbx.toml section is validated with: problems collected with file and line.

tomllib keeps no positions for values, so `Locator` finds them again in the text: the Nth
``[[routes]]`` header, then the ``key =`` line inside that table. `Checker` collects every
problem and warning (an admin fixing a config wants the whole list, not one error per run).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Problem = tuple[Path, int, str]
"""(file, line, reason); line 0 means the problem is about the file as a whole."""


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")


class Locator:
    """Maps (table, occurrence, key) back to a line number of the TOML text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # (table name, occurrence among same-named headers, first line, last line), 1-based
        self.tables: list[tuple[str, int, int, int]] = []
        seen: dict[str, int] = {}
        start, name = 1, ""
        for no, line in enumerate(self.lines, 1):
            m = _HEADER.match(line)
            if m:
                self._close(name, seen, start, no - 1)
                name, start = m.group(2).replace(" ", ""), no
        self._close(name, seen, start, len(self.lines))

    def _close(self, name: str, seen: dict[str, int], start: int, end: int) -> None:
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        self.tables.append((name, occurrence, start, end))

    def line(self, table: str, occurrence: int = 0, key: str | None = None) -> int:
        for name, occ, start, end in self.tables:
            if name == table and occ == occurrence:
                if key is not None:
                    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
                    for no in range(start, end + 1):
                        if pattern.match(self.lines[no - 1]):
                            return no
                return start if table else 1
        return 1


class Checker:
    """Collects every problem (and warning) of one file with its line; `schema` is the keys
    each table may hold (config._SCHEMA), so an unknown key gets a did-you-mean."""

    def __init__(self, path: Path, text: str, schema: Mapping[str, set[str]]) -> None:
        self.path, self.base = path, path.parent
        self.loc = Locator(text)
        self.schema = schema
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def fail(self, table: str, reason: str, key: str | None = None, occurrence: int = 0) -> None:
        self.problems.append((self.path, self.loc.line(table, occurrence, key), reason))

    def warn(self, table: str, reason: str, key: str | None = None, occurrence: int = 0) -> None:
        self.warnings.append((self.path, self.loc.line(table, occurrence, key), reason))

    def table(self, doc: dict[str, Any], name: str) -> dict[str, Any]:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            self.fail("", f"'{name}' must be a table ([{name}])", name)
            return {}
        self.unknown(value, name, f"[{name}]")
        return value

    def unknown(self, table: dict[str, Any], kind: str, where: str, occurrence: int = 0) -> None:
        for key in table:
            if key not in self.schema[kind]:
                close = difflib.get_close_matches(key, sorted(self.schema[kind]), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                self.fail(kind, f"unknown key '{key}' in {where}{hint}", key, occurrence)

    def get(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
            where: tuple[str, str, int]) -> Any:
        """table[key] if it has the right type (bool is not a number here), else the default."""
        if key not in table:
            return default
        value = table[key]
        wrong_bool = isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
        if wrong_bool or not isinstance(value, kind):
            names = {str: "a string", bool: "true or false", list: "a list", dict: "a table",
                     int: "a number", float: "a number"}
            want = names.get(kind if isinstance(kind, type) else kind[0], "valid")
            self.fail(where[0], f"{key} in {where[1]} must be {want}", key, where[2])
            return default
        return value

    def resolve(self, raw: str) -> Path:
        return (self.base / raw).resolve() if not Path(raw).is_absolute() else Path(raw)

    def program(self, table: str, d: dict[str, Any], key: str, where: tuple[str, str, int],
                events: str) -> str | None:
        """An optional program run beside the calls (a queue's `alert`, a box's `notify`): its
        path, resolved.  Missing or not executable is a warning, not an error: the calls go on,
        only its `events` cannot be sent."""
        raw = self.get(d, key, str, None, where)
        if raw is None:
            return None
        if not raw:
            self.fail(table, f"{key} in {where[1]} must be a program path", key, where[2])
            return None
        path = self.resolve(raw)
        line = self.loc.line(table, where[2], key)
        if not path.is_file():
            self.warnings.append((self.path, line, f"{key} program {raw} does not exist: "
                                  f"{events} of {where[1]} cannot be sent"))
        elif not os.access(path, os.X_OK):
            self.warnings.append((self.path, line, f"{key} program {raw} is not executable "
                                  f"(chmod +x): {events} of {where[1]} cannot be sent"))
        return str(path)
