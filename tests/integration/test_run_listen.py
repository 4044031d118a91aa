"""`pbx run` and its listen addresses (issue 9 item 11): a busy port is one line on stderr and
exit status 1, no traceback; `--listen` replaces the config's addresses."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.switch_harness import REPO, free_port, free_rtp_range, options_ping


def config(dir: Path, listen: list[str]) -> Path:
    low, high = free_rtp_range()
    items = ", ".join(f'"{a}"' for a in listen)
    path = dir / "pbx.toml"
    path.write_text(f'[sip]\nrealm = "t"\nlisten = [{items}]\n'
                    f'[media]\nrtp_ports = "{low}-{high}"\n'
                    f'[paths]\nscripts = "{REPO / "scripts"}"\nsounds = "{REPO / "sounds"}"\n'
                    '[store]\ndsn = "sqlite:///var/pbx.db"\n')
    return path


def run(cfg: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pbxcore", "run", "--config", str(cfg),
                           "--no-watch", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, start_new_session=True)


def test_busy_udp_port_is_one_line_and_status_1(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        cfg = config(tmp_path, [f"udp:127.0.0.1:{port}"])
        done = run(cfg)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"cannot listen on udp:127.0.0.1:{port}: address already in use "
        f"([sip] listen in {cfg}:3)")


def test_busy_tcp_port_after_a_good_udp_one(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        udp = free_port()
        cfg = config(tmp_path, [f"udp:127.0.0.1:{udp}", f"tcp:127.0.0.1:{port}"])
        done = run(cfg)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"cannot listen on tcp:127.0.0.1:{port}: address already in use "
        f"([sip] listen in {cfg}:3)")


def test_listen_overrides_the_config(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        cfg = config(tmp_path, [f"udp:127.0.0.1:{busy.getsockname()[1]}"])
        port = free_port()
        log = tmp_path / "pbx.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pbxcore", "run", "--config", str(cfg), "--no-watch",
                 "--listen", f"udp:127.0.0.1:{port}", "--listen", f"tcp:127.0.0.1:{port}"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        try:
            answered = {"udp": False, "tcp": False}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and proc.poll() is None and not answered["udp"]:
                answered["udp"] = options_ping(port, timeout=0.3)
            answered["tcp"] = options_ping(port, timeout=2.0, transport="tcp")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    assert answered == {"udp": True, "tcp": True}, log.read_text()


def test_busy_listen_override_names_the_option(tmp_path: Path) -> None:
    cfg = config(tmp_path, [f"udp:127.0.0.1:{free_port()}"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        done = run(cfg, "--listen", f"udp:127.0.0.1:{port}")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"cannot listen on udp:127.0.0.1:{port}: address already in use (--listen)")


def test_bad_listen_value_is_a_usage_error(tmp_path: Path) -> None:
    cfg = config(tmp_path, [f"udp:127.0.0.1:{free_port()}"])
    done = run(cfg, "--listen", "udp:127.0.0.1")
    assert done.returncode == 2
    assert "--listen" in done.stderr and "udp|tcp:HOST:PORT" in done.stderr
    assert "Traceback" not in done.stderr
