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
