"""A sweep must not kill a script the switch is starting right now: until its exec the child has
the switch's environment (no PBX_RUN_ID) and `own()` does not know its pid yet."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from pbxcore.script import contain


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                            env={"PATH": "/usr/bin:/bin"})  # no PBX_RUN_ID, like a fresh fork
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(5)


def test_a_young_child_without_a_run_id_is_left_alone(child: subprocess.Popen[bytes],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contain, "_children", lambda: [child.pid])
    assert contain._leftovers() == []  # not killed while it may still be starting
    assert contain._age(child.pid) < 1.0


def test_an_old_child_without_a_run_id_is_a_leftover(child: subprocess.Popen[bytes],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contain, "_children", lambda: [child.pid])
    monkeypatch.setattr(contain, "YOUNG", 0.0)  # as if it had been around for a while
    assert contain._leftovers() == [child.pid]
