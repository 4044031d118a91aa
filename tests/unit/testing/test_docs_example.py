"""The complete example in docs/testing-scripts.md is a valid fixture that replays green."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pbxcore.testing.replay import replay_file
from pbxcore.testing.report import failure_text

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "testing-scripts.md"


def test_documented_fixture_replays(tmp_path: Path) -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    fixture = json.loads(blocks[0])
    (tmp_path / "scripts").symlink_to(REPO / "scripts")
    path = tmp_path / "tests" / "fixtures" / "doc.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(fixture))
    result = replay_file(path)
    assert result.passed, failure_text(result)
    assert len(result.steps) == 4


README = REPO / "README.md"


def _first_script(tmp_path: Path) -> Path:
    section = README.read_text().split("## Your first script", 1)[1]
    body = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)[0]
    script = tmp_path / "hello.sh"
    script.write_text(body)
    script.chmod(0o755)
    return script


def _replay(tmp_path: Path, script: Path, gather: dict[str, object], expect: list[str]) -> None:
    path = tmp_path / "readme.json"
    path.write_text(json.dumps({"pbxcore_fixture": 1, "name": "README first script",
                                "script": script.name, "steps": [
        {"event": "incoming", "expect": ["answer", "play welcome", "gather max=1 timeout=5"]},
        {"event": "gather", **gather, "expect": expect},
    ]}))
    result = replay_file(path)
    assert result.passed, failure_text(result)


def test_readme_first_script_when_the_caller_presses_a_key(tmp_path: Path) -> None:
    _replay(tmp_path, _first_script(tmp_path), {"result": "ok", "digits": "7"},
            ["say digits 7", "hangup"])


def test_readme_first_script_when_the_caller_presses_nothing(tmp_path: Path) -> None:
    # A gather timeout gives empty digits: `say digits ` would be invalid output (the fallback).
    _replay(tmp_path, _first_script(tmp_path), {"result": "timeout", "digits": ""},
            ["play goodbye", "hangup"])
