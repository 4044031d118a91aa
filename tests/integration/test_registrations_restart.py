"""Registrations survive a node restart (issue 13): a phone registers, the switch stops
(SIGTERM, or kill -9: no chance to save anything then) and starts again on the same store, and
a call to that extension rings the phone without a new REGISTER.  An un-REGISTER before the
restart stays done.  A REGISTER is answered only once its binding is in the store."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac
from tests.integration.uas import Phone

USERS = {"1001": "pw1001", "1002": "pw1002"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    s = tmp_path / "s"
    s.mkdir()
    path = s / "one.sh"
    path.write_text('#!/bin/sh\ncase "$PBX_EVENT" in incoming) echo "dial 1002 timeout=5";;\n'
                    'dial) echo "reject busy";;\nesac\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    routes = f'[[routes]]\nmatch = "^1$"\nscript = "{path}"\npublic = true\n'
    yield tmp_path, write_config(tmp_path, port=port, routes=routes, scripts=s, users=USERS), port


def restart(sw: SwitchProcess, how: str) -> SwitchProcess:
    if how == "kill":
        os.killpg(sw.proc.pid, signal.SIGKILL)
        sw.proc.wait(10)
    else:
        assert sw.stop() == 0
    return start_switch(sw.dir, sw.config, sw.port)


@pytest.mark.parametrize("how", ["sigterm", "kill"])
def test_a_registered_phone_rings_after_a_restart(site: tuple[Path, Path, int], how: str) -> None:
    dir, config, port = site
    sw = start_switch(dir, config, port)
    callee = Phone(port, "1002", USERS["1002"], "answer")
    caller: Uac | None = None
    try:
        assert callee.register() == 200
        sw = restart(sw, how)
        assert "1 live bindings loaded from the store" in sw.log_text()
        callee.start()  # no new REGISTER from here on
        caller = Uac(port)
        resp = caller.call("1")
        assert resp is not None and resp.status == 200
        assert len(callee.seen.invites) == 1
        assert (bye := caller.bye()) is not None and bye.status == 200
        regs = sw.pbx("registrations", "--json")
        assert f"127.0.0.1:{callee.port}" in regs.stdout, regs.stdout + regs.stderr
    finally:
        if caller is not None:
            caller.close()
        callee.close()
        sw.stop()


def test_an_unregister_before_a_restart_stays_done(site: tuple[Path, Path, int]) -> None:
    dir, config, port = site
    sw = start_switch(dir, config, port)
    callee = Phone(port, "1002", USERS["1002"], "answer")
    caller: Uac | None = None
    try:
        assert callee.register() == 200
        assert callee.register(expires=0) == 200  # the phone is switched off
        sw = restart(sw, "kill")
        callee.start()
        caller = Uac(port)
        resp = caller.call("1")
        assert resp is not None and resp.status == 486  # dial: not registered → reject busy
        assert callee.seen.invites == []
    finally:
        if caller is not None:
            caller.close()
        callee.close()
        sw.stop()
