"""The wallboard's colours: red at a queue's alert threshold, amber from threshold x
alert_clear, the service level as the line when no alert_longest_wait is set; what counts as
a change for the SSE feed (not the running timers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pbxcore.config import load_config
from pbxcore.web.live import decorate, level, signature


def test_level() -> None:
    assert level(59, 60, 0.8) == "amber" and level(60, 60, 0.8) == "red"
    assert level(47, 60, 0.8) == "ok" and level(48, 60, 0.8) == "amber"
    assert level(1000, None, 0.8) == "ok"


def queue(name: str, waiting: int, longest: float, sl: float = 20.0) -> dict[str, Any]:
    return {"name": name, "waiting": waiting, "longest_wait": longest, "agents": {},
            "answered_today": 0, "abandoned_today": 0, "service_level": sl, "alert": None}


def test_decorate_uses_the_queue_thresholds(tmp_path: Path) -> None:
    (tmp_path / "pbx.toml").write_text(
        '[web]\nsl_target = 85\n[[users]]\nextension = "1001"\npassword = "x"\n'
        '[[queues]]\nname = "a"\nmembers = ["1001"]\nalert_longest_wait = 30\n'
        'alert_waiting = 5\nalert_clear = 0.5\n'
        '[[queues]]\nname = "b"\nmembers = ["1001"]\nservice_level = 10\n')
    config = load_config(tmp_path / "pbx.toml")
    top = decorate({"queues": [queue("a", 3, 16), queue("b", 1, 12, 10.0)]}, config)
    a, b = top["queues"]
    assert (a["wait_level"], a["waiting_level"], a["wait_alert"]) == ("amber", "amber", 30)
    assert b["wait_level"] == "red" and b["waiting_level"] == "ok"  # 12 s past its 10 s service level
    assert a["sl_target"] == 85.0


def test_signature_ignores_timers() -> None:
    one = {"queues": [queue("a", 1, 3.0)], "agents": [], "calls": [], "lines_in_use": 1}
    later = {"queues": [queue("a", 1, 4.0)], "agents": [], "calls": [], "lines_in_use": 1}
    more = {"queues": [queue("a", 2, 4.0)], "agents": [], "calls": [], "lines_in_use": 2}
    assert signature(one) == signature(later) != signature(more)
