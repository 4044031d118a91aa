"""Helpers for the replay tests: write small executable scripts and fixtures into tmp_path."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Writer = Callable[..., Path]


@pytest.fixture
def script(tmp_path: Path) -> Writer:
    def write(name: str, body: str, shebang: str = "#!/bin/sh") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{shebang}\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return path
    return write


@pytest.fixture
def fixture_file(tmp_path: Path) -> Writer:
    def write(file: str, script: str, steps: list[dict[str, Any]], **top: Any) -> Path:
        path = tmp_path / file
        path.parent.mkdir(parents=True, exist_ok=True)
        obj = {"pbxcore_fixture": 1, "script": script,
               "call": {"caller": "1001", "called": "100"}, "steps": steps, **top}
        path.write_text(json.dumps(obj, indent=2))
        return path
    return write
