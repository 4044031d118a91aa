"""pytest plugin: fixture files become test items; `replay_fixture(path)` for your own tests.

Enable it with ``pytest -p pbxcore.testing.pytest_plugin``, with
``pytest_plugins = ["pbxcore.testing.pytest_plugin"]`` in the rootdir's conftest.py, or
(for one folder only) by importing the hook into that folder's conftest.py::

    from pbxcore.testing.pytest_plugin import pytest_collect_file  # noqa: F401

Every ``*.json`` file whose top-level object has the "pbxcore_fixture" key is then collected
as one test item named after the fixture's "name"; other JSON files are left alone. A failed
item shows the same text as `pbx replay` (step, message, expected/actual diff, stderr).
This is the same replay code `pbx replay` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pbxcore.testing.fixture import FixtureError, is_fixture_data, load_fixture, read_json
from pbxcore.testing.replay import FixtureResult, replay_file
from pbxcore.testing.report import failure_text

__all__ = ["FixtureFailed", "replay_fixture", "pytest_collect_file"]


class FixtureFailed(AssertionError):
    """A fixture did not replay green; str() is the full report, `.result` the details."""

    def __init__(self, result: FixtureResult) -> None:
        super().__init__(f"{result.shown or result.path}: {result.name}\n{failure_text(result)}")
        self.result = result


def replay_fixture(path: str | Path, *, transport: str | None = None) -> FixtureResult:
    """Replay one fixture file; raise FixtureFailed (an AssertionError) unless it passes.

    For plain (synchronous) tests; in async code use pbxcore.testing.replay.replay_path.
    """
    result = replay_file(path, transport_name=transport)
    if not result.passed:
        raise FixtureFailed(result)
    return result


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".json":
        return None
    try:
        if not is_fixture_data(read_json(file_path)):
            return None
    except FixtureError:
        return None  # not JSON at all: not ours
    file: FixtureFile = FixtureFile.from_parent(parent, path=file_path)
    return file


class FixtureFile(pytest.File):
    """One fixture file: one item (a load error is reported when the item runs)."""

    def collect(self) -> list[pytest.Item]:
        try:
            name = load_fixture(self.path, self._shown()).name
        except FixtureError:
            name = self.path.stem
        return [FixtureItem.from_parent(self, name=name)]

    def _shown(self) -> str:
        return str(self.path.relative_to(self.config.rootpath)) \
            if self.path.is_relative_to(self.config.rootpath) else str(self.path)


class FixtureItem(pytest.Item):
    """Replays its fixture through the real script transport."""

    def runtest(self) -> None:
        result = replay_file(self.path)
        if not result.passed:
            raise FixtureFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, FixtureFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"fixture: {self.name}"
