"""A call's traced script runs become a fixture that validates and replays green."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pbxcore.script.events import Event, HistoryEntry, event_env, event_json
from pbxcore.testing.capture import CaptureError, fixture_from_trace
from pbxcore.testing.fixture import parse_fixture
from pbxcore.testing.replay import replay_file
from pbxcore.testing.report import failure_text
from tests.unit.testing.conftest import Writer

IVR = """read -r line
case "$PBX_EVENT" in
  incoming) echo answer; echo "set T=1"; echo "gather max=1";;
  gather) echo "play a"; echo "set T=$((PBX_VAR_T + 1))"; echo "gather max=1";;
  hangup) echo "log T=$PBX_VAR_T $PBX_HANGUP_CAUSE crm=$CRM";;
esac
"""


def run(script: Path, ev: Event, stdout: str, error: str | None = None) -> dict[str, Any]:
    """A `script` trace entry as pbxcore/call/engine.py writes it."""
    return {"script": str(script), "event": ev.name, "env": event_env(ev, {"CRM": "x"}),
            "stdin": event_json(ev).decode(), "stdout": stdout, "stderr": "",
            "exit": 0 if error is None else 1, "duration": 0.01, "error": error}


def test_trace_to_fixture_and_back(script: Writer, tmp_path: Path) -> None:
    s = script("scripts/ivr.sh", IVR)
    base = dict(call_id="C1", caller="1001", caller_name="Ann", called="100", route="^100$",
                headers={"User-Agent": "phone"})
    # The caller hung up during `play a`, so the second gather's `set T=3` never ran:
    # the hangup event carries T=2 and the fixture must say so explicitly.
    runs = [
        run(s, Event("incoming", **base), "answer\nset T=1\ngather max=1\n"),
        run(s, Event("gather", **base, vars={"T": "1"}, result="ok", digits="5",
                     history=(HistoryEntry("incoming"),)), "play a\nset T=2\ngather max=1\n"),
        run(s, Event("gather", **base, vars={"T": "2"}, result="timeout",
                     history=(HistoryEntry("incoming"), HistoryEntry("gather", "ok"))),
            "play a\nset T=3\ngather max=1\n"),
        run(s, Event("hangup", **base, vars={"T": "2"}, result="caller",
                     extra={"hangup_cause": "BYE"},
                     history=(HistoryEntry("incoming"), HistoryEntry("gather", "ok"))),
            "log 'T=2 BYE crm=x'\n"),
    ]
    out = tmp_path / "fixtures" / "call.json"
    out.parent.mkdir()
    fx = fixture_from_trace(runs, fixture_dir=out.parent, timeout=3.0)
    assert fx["script"] == "../scripts/ivr.sh" and fx["timeout"] == 3.0
    assert fx["env"] == {"CRM": "x"}
    assert fx["call"] == {"caller": "1001", "caller_name": "Ann", "called": "100",
                          "language": "en", "route": "^100$", "call_id": "C1",
                          "headers": {"User-Agent": "phone"}}
    assert fx["steps"][1] == {"event": "gather", "result": "ok", "digits": "5",
                              "expect": ["play a", "set T=2", "gather max=1"]}
    assert "vars" not in fx["steps"][2]
    assert fx["steps"][3]["vars"] == {"T": "2"}
    assert fx["steps"][3]["extra"] == {"hangup_cause": "BYE"}
    out.write_text(json.dumps(fx))
    parse_fixture(fx, out)
    result = replay_file(out)
    assert result.passed, failure_text(result)


def test_failed_runs_become_expect_error(script: Writer, tmp_path: Path) -> None:
    s = script("bad.sh", "exit 3\n")
    fx = fixture_from_trace([run(s, Event("incoming", "C2"), "", "exit status 3")],
                            fixture_dir=tmp_path, name="broken")
    assert fx["name"] == "broken"
    assert fx["steps"] == [{"event": "incoming", "expect_error": "exit status 3"}]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(fx))
    assert replay_file(path).passed


def test_nothing_to_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no script runs"):
        fixture_from_trace([], fixture_dir=tmp_path)
    with pytest.raises(CaptureError, match="script run 1: no readable event"):
        fixture_from_trace([{"script": "x", "stdin": "not json"}], fixture_dir=tmp_path)
