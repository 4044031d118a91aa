"""Run one pyVoIP phone session in a child process and read back what happened.

pyVoIP 1.6.8 starts non-daemon threads that can outlive any error (docs/peers.md §1c), so the
phone never runs in the caller's process: `run_phone(plan)` starts `python -m
pbxcore.phone.session` with the plan as JSON on stdin, waits for it (bounded: the plan's own
deadline plus a margin, then the child's process group is killed by pid) and returns the JSON
result the child wrote to a temporary file.  The child always ends with os._exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MARGIN = 15.0  # seconds past the plan's deadline before the child is killed


def run_phone(plan: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pbx-phone-") as tmp:
        result_path = Path(tmp) / "result.json"
        plan = {**plan, "result": str(result_path)}
        proc = subprocess.Popen([sys.executable, "-m", "pbxcore.phone.session"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, err = proc.communicate(json.dumps(plan).encode(),
                                      timeout=float(plan["deadline"]) + MARGIN)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=5)
        try:
            result: dict[str, Any] = json.loads(result_path.read_text())
        except (OSError, ValueError):
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            result = {"error": f"the phone process ended with {proc.returncode}: {tail[0]}"}
        return result


def local_ip_for(host: str, port: int) -> str:
    """The address this machine uses to reach host (what goes into Via, Contact and SDP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))  # UDP connect: no packet is sent, only a route chosen
        return str(s.getsockname()[0])


def free_udp_block(host: str, size: int) -> int:
    """The first port of `size` consecutive UDP ports free on host right now (bounded tries)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            base = int(s.getsockname()[1])
        if base + size > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + size):
                t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(t)
                t.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise OSError("no free UDP port block")
