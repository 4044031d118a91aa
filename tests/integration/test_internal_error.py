"""Our own bug in the middle of a call (a verb raising something unexpected) must not lose the
call: the caller is hung up, the script still gets its hangup event, the CDR is closed with the
error.  In-process switch (memory store), so a verb can be made to fail."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

import pbxcore.verbs as verbs
from pbxcore.config import load_config
from pbxcore.server import start_switch
from tests.integration.switch_harness import free_port, write_config
from tests.integration.uac import Uac


async def test_a_crashing_verb_still_closes_the_call(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "s.sh"
    script.write_text('#!/bin/sh\necho "$PBX_EVENT" >> "$(dirname "$0")/events.log"\n'
                      'case "$PBX_EVENT" in incoming) echo answer; echo "log boom";; esac\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)

    async def broken(call: object, action: object) -> None:
        raise RuntimeError("a bug in a verb")

    monkeypatch.setitem(verbs.VERBS, "log", broken)
    port = free_port()
    config_path = write_config(tmp_path, port=port, scripts=tmp_path, routes=f"""
[[routes]]
match = "^1$"
script = "{script}"
public = true
""")
    text = config_path.read_text().replace('dsn = "sqlite:///var/pbx.db"', 'dsn = "memory://"')
    config_path.write_text(text)
    running = await start_switch(load_config(config_path))
    try:
        uac = Uac(port)
        try:
            resp = await asyncio.to_thread(uac.call, "1")
            assert resp is not None and resp.status == 200
            assert await asyncio.to_thread(uac.wait_bye, 10) is not None
        finally:
            uac.close()
        store = running.deps.store
        for _ in range(100):
            cdrs = await store.cdrs()
            if cdrs and cdrs[0].end is not None:
                break
            await asyncio.sleep(0.05)
        cdr = cdrs[0]
        assert cdr.end is not None and any("a bug in a verb" in e for e in cdr.script_errors)
        assert (tmp_path / "events.log").read_text().split() == ["incoming", "hangup"]
    finally:
        await running.stop()
