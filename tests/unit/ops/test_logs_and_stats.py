"""JSON log lines (call id from extra or from the "call %s" convention, caller text escaped)
and the switch's counters (calls per second, script errors in the last minute, latency
buckets)."""

from __future__ import annotations

import json
import logging
import sys

from pbxcore.call.stats import LATENCY_BUCKETS, SwitchStats
from pbxcore.logs import JsonFormatter, call_id_of


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("pbxcore.switch", logging.INFO, __file__, 1, msg, args, None)
    r.__dict__.update(extra)
    return r


def test_call_id_from_the_message_convention_and_from_extra() -> None:
    assert call_id_of(record("call %s: ended: %s", "01ABC", "answered")) == "01ABC"
    assert call_id_of(record("REGISTER %s from %s", "1001", "x")) is None
    assert call_id_of(record("anything", call_id="01XYZ")) == "01XYZ"


def test_json_line_escapes_caller_text() -> None:
    line = JsonFormatter().format(record("call %s: %s (%s) -> %s", "01ABC", "1001",
                                         "Eve\x1b[2J\n\u202e", "100"))
    assert "\n" not in line and "\x1b" not in line and line.isascii()
    got = json.loads(line)
    assert got["call_id"] == "01ABC" and got["level"] == "INFO"
    assert got["logger"] == "pbxcore.switch"
    assert got["message"] == "call 01ABC: 1001 (Eve\x1b[2J\n\u202e) -> 100"
    assert got["time"].endswith("+00:00")


def test_exception_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        r = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    got = json.loads(JsonFormatter().format(r))
    assert "ValueError: boom" in got["exception"] and "call_id" not in got


def test_rates_over_their_windows() -> None:
    s = SwitchStats()
    for t in (100.0, 101.0, 105.0, 109.5):
        s.call_started(t)
    assert s.calls_per_second(110.0) == 0.4  # 4 starts in the last 10 s
    assert s.calls_per_second(114.5) == 0.2  # 105 and 109.5 remain
    s.script_ran("process", 0.02, False, 10.0)
    s.script_ran("process", 0.02, False, 50.0)
    s.script_ran("webhook", 0.3, True, 60.0)
    assert s.errors_last_minute(69.0) == 2
    assert s.errors_last_minute(80.0) == 1
    assert s.errors_last_minute(200.0) == 0
    assert s.script_errors == 2


def test_latency_histogram_is_cumulative() -> None:
    s = SwitchStats()
    for seconds in (0.004, 0.02, 0.02, 3.0, 60.0):
        s.script_ran("worker", seconds, True, 0.0)
    lat = s.script_runs["worker"]
    by_bound = dict(zip(LATENCY_BUCKETS, lat.counts, strict=True))
    assert by_bound[0.005] == 1 and by_bound[0.025] == 3 and by_bound[5.0] == 4
    assert by_bound[10.0] == 4 and lat.count == 5  # 60 s only in +Inf
    assert abs(lat.total - 63.044) < 1e-9


def test_calls_total_by_route_and_disposition() -> None:
    s = SwitchStats()
    s.call_ended("sales", "answered", 500)
    s.call_ended("sales", "answered", 100)
    s.call_ended("sales", "abandoned", 0)
    assert s.calls_total == {("sales", "answered"): 2, ("sales", "abandoned"): 1}
    assert s.rtp_sent_ended == 600
