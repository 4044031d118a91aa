"""`pbx top`'s rendering is a pure function of one `top` answer: snapshots of every pane at
80x24 and 120x40 (tests/unit/cli/snapshots/; rewrite them with PBX_SNAPSHOTS=update after a
deliberate change and read the diff), rows cut to the screen, hostile caller text escaped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pbxcore.cli.top_cmd import next_pane
from pbxcore.cli.top_view import PANES, render_top

SNAPSHOTS = Path(__file__).parent / "snapshots"


def call(i: int, **kw: Any) -> dict[str, Any]:
    base = {"call_id": f"c{i:011x}", "caller": f"+4930555{i:04d}", "caller_name": f"Caller {i}",
            "called": "0800123" if i % 2 else "0800999", "route": "sales" if i % 2 else "support",
            "state": "in queue", "detail": "sales", "answered": True,
            "started": "2026-01-05T12:00:00+00:00", "duration": 10.0 * i, "script": "ivr.py",
            "agent": None, "language": "en"}
    base.update(kw)
    return base


def data(n_calls: int = 4, **kw: Any) -> dict[str, Any]:
    calls = [call(i) for i in range(n_calls)]
    if calls:
        calls[0].update(state="bridged", detail="1004", agent="1004")
    d: dict[str, Any] = {
        "time": "2026-01-05T12:03:00+00:00", "version": "0.1.0", "uptime_seconds": 3723.0,
        "capacity": 30, "lines_in_use": n_calls, "calls_per_second": 0.3,
        "script_errors_last_minute": 2,
        "by_route": [{"route": "sales", "calls": (n_calls + 1) // 2},
                     {"route": "support", "calls": n_calls // 2}],
        "by_did": [{"did": "0800123", "calls": n_calls // 2},
                   {"did": "0800999", "calls": (n_calls + 1) // 2}],
        "calls": calls,
        "queues": [
            {"name": "sales", "strategy": "longest-idle", "waiting": 3, "longest_wait": 95.0,
             "agents": {"logged_out": 2, "available": 1, "ringing": 0, "talking": 1,
                        "wrapup": 0, "paused": 1},
             "answered_today": 40, "abandoned_today": 2, "sl_today": 87.5,
             "service_level": 20,
             "alert": {"figure": "longest_wait", "value": 95.0, "threshold": 60,
                       "since": "2026-01-05T12:01:00+00:00"}},
            {"name": "support", "strategy": "ring-all", "waiting": 0, "longest_wait": 0,
             "agents": {"logged_out": 0, "available": 2, "ringing": 0, "talking": 0,
                        "wrapup": 0, "paused": 0},
             "answered_today": 0, "abandoned_today": 0, "sl_today": None,
             "service_level": 30, "alert": None},
        ],
        "agents": [
            {"extension": "1004", "name": "Anna", "state": "talking", "reason": None,
             "since": "2026-01-05T12:02:00+00:00", "state_seconds": 60.0, "calls_today": 7,
             "queues": ["sales"]},
            {"extension": "1005", "name": "Pavel", "state": "paused", "reason": "lunch",
             "since": "2026-01-05T11:00:00+00:00", "state_seconds": 3700.0, "calls_today": 3,
             "queues": ["sales", "support"]},
            {"extension": "1006", "name": None, "state": "available", "reason": None,
             "since": "2026-01-05T12:00:00+00:00", "state_seconds": 180.0, "calls_today": 0,
             "queues": ["support"]},
        ],
        "registrations": 5,
        "trunks": [{"name": "provider", "status": "registered for 300 s"},
                   {"name": "backup", "status": "failed: 403 Forbidden"}],
    }
    d.update(kw)
    return d


def screen(d: dict[str, Any], pane: str, width: int, height: int) -> str:
    console = Console(width=width, height=height, record=True, color_system=None,
                      force_terminal=False, legacy_windows=False)
    console.print(render_top(d, pane, width, height))
    return console.export_text()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("pane", PANES)
def test_snapshot(pane: str, size: tuple[int, int]) -> None:
    width, height = size
    text = screen(data(), pane, width, height)
    path = SNAPSHOTS / f"top_{pane}_{width}x{height}.txt"
    if os.environ.get("PBX_SNAPSHOTS") == "update":
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pytest.mark.parametrize("pane", PANES)
def test_many_rows_fit_the_screen(pane: str, size: tuple[int, int]) -> None:
    width, height = size
    d = data(200)
    d["queues"] = d["queues"] * 40
    d["agents"] = d["agents"] * 50
    d["trunks"] = d["trunks"] * 30
    lines = screen(d, pane, width, height).splitlines()
    assert len(lines) <= height
    assert max(len(line) for line in lines) <= width
    assert any("more" in line for line in lines)


def test_lines_against_capacity_and_unset_capacity() -> None:
    assert "lines 27/30 #########. 90%" in screen(data(27), "calls", 80, 24)
    assert "lines 4 (no capacity set)" in screen(data(capacity=None), "calls", 80, 24)


def test_hostile_caller_text_is_escaped() -> None:
    d = data(1)
    d["calls"][0].update(caller="\x1b[2J[red]x[/red]", state="ringing")
    text = screen(d, "calls", 120, 40)
    assert "\x1b" not in text and "\\x1b[2J[red]x[/red]" in text


def test_no_queues_and_an_error_are_shown() -> None:
    d = data(0, queues=None, agents=None, trunks=[])
    assert "no queues configured" in screen(d, "queues", 80, 24)
    assert "no queues configured" in screen(d, "agents", 80, 24)
    assert "no trunks configured" in screen(d, "trunks", 80, 24)
    assert "no live calls" in screen(d, "calls", 80, 24)
    console = Console(width=80, height=24, record=True, color_system=None)
    console.print(render_top(d, "calls", 80, 24, error="switch not answering"))
    assert "switch not answering" in console.export_text()


def test_keys() -> None:
    assert next_pane("calls", "2") == "queues"
    assert next_pane("calls", "4") == "trunks"
    assert next_pane("trunks", "\t") == "calls"
    assert next_pane("calls", "\t\t") == "agents"
    assert next_pane("calls", "x") == "calls"
    assert next_pane("calls", "1q") is None
    assert next_pane("queues", "\x03") is None


def test_calls_cut_by_the_switch_are_counted() -> None:
    d = data(3)
    d["lines_in_use"] = 900
    assert "900 live calls (the 3 oldest sent)" in screen(d, "calls", 80, 24)
