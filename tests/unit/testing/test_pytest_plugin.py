"""The pytest plugin: fixtures collected as items (via -p and via a conftest), replay_fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pbxcore.testing.pytest_plugin import FixtureFailed, replay_fixture
from tests.unit.testing.conftest import Writer

REPO = Path(__file__).resolve().parents[3]


def suite(script: Writer, fixture_file: Writer) -> Path:
    script("s.sh", "echo answer\necho 'play hello'\n")
    good = fixture_file("good.json", "s.sh", name="says hello",
                        steps=[{"event": "incoming", "expect": ["answer", "play hello"]}])
    fixture_file("bad.json", "s.sh", name="says goodbye",
                 steps=[{"event": "incoming", "expect": ["answer", "play goodbye"]}])
    root = good.parent
    (root / "other.json").write_text(json.dumps({"not": "a fixture"}))
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


def pytest_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           *args], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_plugin_with_p_option(script: Writer, fixture_file: Writer) -> None:
    root = suite(script, fixture_file)
    done = pytest_run(root, "-p", "pbxcore.testing.pytest_plugin", "-rA")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    assert "bad.json::says goodbye" in done.stdout and "good.json::says hello" in done.stdout
    assert "- play goodbye" in done.stdout and "+ play hello" in done.stdout


def test_plugin_with_pytest_plugins_in_conftest(script: Writer, fixture_file: Writer) -> None:
    root = suite(script, fixture_file)
    (root / "conftest.py").write_text('pytest_plugins = ["pbxcore.testing.pytest_plugin"]\n')
    done = pytest_run(root, "good.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_without_the_plugin_json_is_not_collected(script: Writer, fixture_file: Writer) -> None:
    root = suite(script, fixture_file)
    done = pytest_run(root, "-p", "no:pbxcore.testing.pytest_plugin")
    assert done.returncode == 5  # no tests collected


def test_the_installed_entry_point_collects_without_options(script: Writer,
                                                           fixture_file: Writer) -> None:
    root = suite(script, fixture_file)
    done = pytest_run(root, "-rA")  # pbxcore is installed: setup.cfg's pytest11 entry point
    assert done.returncode == 1 and "1 failed, 1 passed" in done.stdout, done.stdout


def test_replay_fixture_helper(script: Writer, fixture_file: Writer) -> None:
    root = suite(script, fixture_file)
    assert replay_fixture(root / "good.json").passed
    with pytest.raises(FixtureFailed) as info:
        replay_fixture(root / "bad.json")
    assert "says goodbye" in str(info.value) and "- play goodbye" in str(info.value)
    assert isinstance(info.value, AssertionError) and not info.value.result.passed
