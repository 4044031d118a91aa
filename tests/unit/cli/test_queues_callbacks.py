"""`pbx queues` lists the callbacks waiting in each queue, in their order, escaped."""

from __future__ import annotations

from rich.console import Console

from pbxcore.cli.queues_cmd import render_queues


def test_callbacks_column_lists_numbers_in_order_with_attempts() -> None:
    queue = {"name": "sales", "waiting": 2, "longest_wait": 75.0, "agents": {"available": 1},
             "answered_today": 0, "abandoned_today": 0, "sl_today": None, "service_level": 20,
             "alert": None, "callbacks": [
                 {"id": "cb-1", "number": "1003", "attempts": 0, "requested": None},
                 {"id": "cb-2", "number": "555\x1b[2J0100", "attempts": 2, "requested": None}]}
    console = Console(width=200, record=True, color_system=None)
    console.print(render_queues([queue]))
    text = console.export_text()
    assert "1003, 555" in text and "0100 (x2)" in text
    assert "\x1b" not in text  # a caller-supplied number cannot drive the terminal
