"""A script that hangs up right after answering: the BYE waits for the caller's ACK.

RFC 3261 §15: the callee "MUST NOT send a BYE on a confirmed dialog until it has received an ACK
for its 2xx response or until the server transaction times out".  Found by bench/bench_soak.py:
through a lossy relay the switch's BYE overtook a lost 200 OK, and the caller, which never saw
the 200, could not match the BYE to its call (SIPp aborts it: a failed call).
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator

import pytest

from pbxcore.sip.message import Request, Response
from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    dir = tmp_path_factory.mktemp("byeack")
    script = dir / "quick.sh"
    script.write_text('#!/bin/sh\ncase "$PBX_EVENT" in incoming) echo answer; echo hangup;; esac\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    config = write_config(dir, port=port, routes=f"""
        [[routes]]
        match = "^500$"
        script = "{script}"
        public = true
        fallback = ["hangup"]
        """)
    sw = start_switch(dir, config, port)
    yield sw
    sw.stop()


def test_bye_is_sent_only_after_the_ack(switch: SwitchProcess) -> None:
    uac = Uac(switch.port)
    try:
        invite = uac.build_invite("500")
        uac.invite = invite
        uac._send(invite.to_bytes())
        ok = uac.final(10)
        assert isinstance(ok, Response) and ok.status == 200
        # Do not ACK yet, as if the relay lost it: the switch retransmits the 200 (Timer G) and
        # must keep its BYE back although the script has already hung up.
        seen: list[Request | Response] = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            msg = uac.recv(deadline - time.monotonic())
            if msg is not None:
                seen.append(msg)
        assert [m for m in seen if isinstance(m, Request)] == []
        assert any(isinstance(m, Response) and m.status == 200 for m in seen)  # retransmitted
        uac.ack(ok, invite)
        bye = uac.wait_bye(10)
        assert bye is not None and bye.call_id == invite.call_id
    finally:
        uac.close()
