"""The Prometheus endpoint and JSON logs of a real `pbx run`: scraped during a live SIPp call
(active calls, RTP packets sent going up), after it (calls total by route and disposition,
script latency by transport) and after a failing script (script errors); every log line is one
JSON object, the call's lines carry its call id and caller text arrives escaped."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.sipp.sipp_peer import RtpSink, SippResult, run_sipp

pytestmark = pytest.mark.peer

ROUTES = """
[[routes]]
name = "hotline"
match = "^500$"
script = "{s}/moh.sh"
public = true
timeout = 20

[[routes]]
name = "broken"
match = "^666$"
script = "{s}/fail.sh"
public = true
"""
MOH = '#!/bin/sh\ncase "$PBX_EVENT" in incoming) echo answer; echo "play moh"; echo hangup;; esac\n'
HOSTILE = "Eve\u202e\u00e9vil"  # a bidi override and a non-ASCII letter in the display name


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SwitchProcess, int]]:
    s = tmp_path / "s"
    s.mkdir()
    for name, body in (("moh.sh", MOH), ("fail.sh", "#!/bin/sh\nexit 3\n")):
        (s / name).write_text(body)
        (s / name).chmod(0o755)
    port, metrics = free_port(), free_port()
    extra = (f'[metrics]\nlisten = "127.0.0.1:{metrics}"\n'
             '[[queues]]\nname = "sales"\nmembers = ["1001"]\n')
    config = write_config(tmp_path, port=port, routes=ROUTES.format(s=s), scripts=s, extra=extra)
    sw = start_switch(tmp_path, config, port, args=("--log-format", "json"))
    yield sw, metrics
    sw.stop()


def scrape(port: int) -> dict[str, float]:
    """Every sample as 'name{label="v",...}' -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def wait_for(predicate, timeout: float = 15) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_scrape_during_and_after_calls(site: tuple[SwitchProcess, int], tmp_path: Path) -> None:
    sw, mport = site
    before = scrape(mport)
    assert before["pbx_calls_active"] == 0
    assert before["pbx_queue_waiting{queue=\"sales\"}"] == 0
    assert before["pbx_agents{state=\"logged_out\"}"] == 1
    assert before["pbx_script_errors_total"] == 0
    results: list[SippResult] = []

    def caller() -> None:
        with RtpSink() as sink:
            results.append(run_sipp("public_call.xml", sw.port, tmp_path / "sipp", service="500",
                                    keys={"sink_port": str(sink.port), "from_user": "0601",
                                          "from_name": HOSTILE}, timeout=25))

    thread = threading.Thread(target=caller)
    thread.start()
    try:
        assert wait_for(lambda: scrape(mport)["pbx_calls_active"] == 1), sw.log_text()
        first = scrape(mport)["pbx_rtp_packets_sent_total"]
        assert wait_for(lambda: scrape(mport)["pbx_rtp_packets_sent_total"] > first + 10)
    finally:
        thread.join(30)
    assert [r.rc for r in results] == [0], results[0].logs() if results else "no sipp"
    assert wait_for(lambda: scrape(mport)["pbx_calls_active"] == 0)
    after = scrape(mport)
    assert after['pbx_calls_total{disposition="answered",route="hotline"}'] == 1
    assert after['pbx_script_run_seconds_count{transport="process"}'] >= 1
    assert after['pbx_script_run_seconds_bucket{le="+Inf",transport="process"}'] >= 1
    assert after["pbx_rtp_packets_sent_total"] >= 400  # 10 s of music at 50 packets/s

    with RtpSink() as sink:
        run_sipp("public_call.xml", sw.port, tmp_path / "sipp2", service="666",
                 keys={"sink_port": str(sink.port), "from_user": "0602", "from_name": "X"},
                 timeout=5)
    # Both of its events fail: incoming, then hangup.
    assert wait_for(lambda: scrape(mport)["pbx_script_errors_total"] == 2)

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{mport}/other", timeout=5)
    assert e.value.code == 404
    e.value.close()

    # The logs: every line one JSON object, ASCII only; the call's lines carry its id.
    calls = json.loads(sw.pbx("cdr", "--json").stdout)
    call_ids = {c["call_id"] for c in calls}
    lines = sw.log_text().splitlines()
    records = [json.loads(line) for line in lines]  # raises on a line that is not JSON
    assert all(line.isascii() for line in lines)
    assert {"time", "level", "logger", "message"} <= set(records[0])
    about = [r for r in records if r.get("call_id") in call_ids]
    assert {r["call_id"] for r in about} == call_ids
    started = next(r for r in about if "Eve" in r["message"])
    assert HOSTILE in started["message"]  # intact once decoded, escaped on the wire
    assert "\\u202e" in next(line for line in lines if "Eve" in line)
    assert any(r["level"] == "WARNING" and "script failed" in r["message"] for r in about)


def test_metrics_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        config = write_config(tmp_path, port=free_port(), routes="",
                              extra=f'[metrics]\nlisten = "127.0.0.1:{taken}"\n')
        got = subprocess.run([sys.executable, "-m", "pbxcore", "run", "--no-watch", "--config",
                              str(config)], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert got.returncode == 1, got.stderr
    assert f"pbx: cannot serve metrics on [metrics] listen 127.0.0.1:{taken}" in got.stderr
