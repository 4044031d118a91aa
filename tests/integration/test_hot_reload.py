"""Hot reload against a running `pbx run`: a valid change applies to new calls, an invalid one is
refused with file:line and the old config keeps serving."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from tests.integration.switch_harness import free_port, start_switch, write_config
from tests.integration.uac import Uac


def _script(dir: Path, name: str, body: str) -> Path:
    path = dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _status(port: int, called: str) -> int | None:
    uac = Uac(port)
    try:
        resp = uac.call(called, timeout=5)
        return None if resp is None else resp.status
    finally:
        uac.close()


def _wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_reload_applies_valid_and_refuses_invalid(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    _script(s, "busy.sh", 'case "$PBX_EVENT" in incoming) echo "reject busy";; esac\n')
    _script(s, "decline.sh", 'case "$PBX_EVENT" in incoming) echo "reject decline";; esac\n')
    port = free_port()

    def routes(script: str, extra: str = "") -> str:
        return f"""
[[routes]]
match = "^1$"
script = "{s / script}"
public = true
{extra}
"""

    config = write_config(tmp_path, port=port, routes=routes("busy.sh"), scripts=s)
    sw = start_switch(tmp_path, config, port)
    try:
        assert _status(port, "1") == 486
        text = config.read_text()
        config.write_text(text.replace("busy.sh", "decline.sh"))
        assert _wait_for(lambda: "config reloaded" in sw.log_text())
        assert _status(port, "1") == 603

        broken = config.read_text().replace("public = true", "public = true\nscrpit = 'x'")
        config.write_text(broken)
        assert _wait_for(lambda: "config change refused" in sw.log_text())
        log = sw.log_text()
        assert f"{config}:" in log and "scrpit" in log
        assert _status(port, "1") == 603  # the old config still serves

        config.write_text(text.replace("busy.sh", "decline.sh"))  # valid again
        assert _wait_for(lambda: sw.log_text().count("config reloaded") >= 2)
        (s / "events.log").write_text("a script's own file: no reload\n")
        (s / "decline.sh").chmod(0o644)  # a script the route runs stops being executable
        assert _wait_for(lambda: sw.log_text().count("config change refused") >= 2)
        assert "not executable" in sw.log_text()
        assert sw.log_text().count("config reloaded") == 2
    finally:
        sw.stop()
