"""Calls through a trunk, against SIPp playing the provider: outbound calls answer the provider's
407 with digest (checked by SIPp's verifyauth); inbound calls from the trunk's address need no
auth and are routed by the dialled number (DID)."""

from __future__ import annotations

import json
import stat
import textwrap
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.switch_harness import free_port, start_switch, write_config
from tests.integration.uac import Uac
from tests.sipp.sipp_peer import SippResult, run_sipp

pytestmark = pytest.mark.peer


def _script(dir: Path, name: str, body: str) -> Path:
    path = dir / name
    path.write_text("#!/bin/sh\n" + 'echo "$PBX_EVENT $PBX_CALLED $PBX_DIAL_STATUS" >> '
                    '"$(dirname "$0")/events.log"\n' + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _listening(port: int) -> bool:
    """Read the kernel's UDP table rather than probing with bind() (a probe holding the port
    for a moment could make SIPp's own bind fail)."""
    wanted = f":{port:04X}"
    table = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(line.split()[1].endswith(wanted) for line in table)


def _start_provider(pool: ThreadPoolExecutor, tmp_path: Path, switch_port: int,
                    keys: dict[str, str]) -> tuple[Future[SippResult], int]:
    """SIPp as the provider's UAS on a free port, up and listening (a port another process
    takes between our pick and SIPp's bind is retried with a new one)."""
    for attempt in range(5):
        port = free_port()
        future = pool.submit(run_sipp, "provider_uas_407.xml", switch_port,
                             tmp_path / f"sipp{attempt}", service="provider", local_port=port,
                             timeout=25, keys=keys)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not future.done():
            if _listening(port):
                return future, port
            time.sleep(0.05)
    raise AssertionError("SIPp did not start")


def _check_digest(messages: str, user: str, password: str) -> None:
    """Recompute the RFC 2617 qop=auth response of the logged Proxy-Authorization (MD5)."""
    import hashlib
    import re

    line = next(x for x in messages.splitlines() if x.startswith("Proxy-Authorization:"))
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', line.split("Digest", 1)[1]))
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{user}:{p['realm']}:{password}")
    ha2 = md5(f"INVITE:{p['uri']}")
    expected = md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
    assert p["username"] == user and p["response"] == expected


def test_outbound_call_answers_the_providers_407(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    _script(s, "out.sh", 'case "$PBX_EVENT" in incoming) echo "dial 0123456789 timeout=8";;\n'
                         'dial) echo "reject busy";; esac\n')
    port = free_port()
    with ThreadPoolExecutor(1) as pool:
        sipp, provider = _start_provider(pool, tmp_path, port,
                                         {"user": "acct42", "password": "trunk-secret"})
        config = write_config(tmp_path, port=port, scripts=s, extra=textwrap.dedent(f"""
            [[trunks]]
            name = "provider"
            host = "127.0.0.1"
            port = {provider}
            username = "acct42"
            password = "trunk-secret"
            register = false
            match = "^0[0-9]+$"
            """), routes=f"""
[[routes]]
match = "^7$"
script = "{s / 'out.sh'}"
public = true
dial_allow = ["^0[0-9]{{9}}$"]
""")
        sw = start_switch(tmp_path, config, port)
        caller = Uac(port)
        try:
            resp = caller.call("7")
            assert resp is not None and resp.status == 200, sw.log_text()[-2000:]
            caller.rtp.drain(0.5)
            assert (bye := caller.bye()) is not None and bye.status == 200
            result = sipp.result(timeout=40)
        finally:
            caller.close()
            sw.stop()
    assert result.rc == 0, result.logs()
    messages = result.messages()
    assert "Proxy-Authorization: Digest" in messages and 'username="acct42"' in messages
    _check_digest(messages, "acct42", "trunk-secret")
    assert "sip:0123456789@127.0.0.1" in messages
    cdr = json.loads(sw.pbx("cdr", "--json").stdout)[0]
    assert [(leg["target"], leg["disposition"]) for leg in cdr["legs"]] == [
        ("0123456789", "answered")]


def test_inbound_call_from_the_trunk_is_routed_by_did(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    _script(s, "shop1.sh", 'case "$PBX_EVENT" in incoming) echo answer; echo "wait 0.3"; '
                           'echo hangup;; esac\n')
    _script(s, "shop2.sh", 'case "$PBX_EVENT" in incoming) echo "reject busy";; esac\n')
    port, provider = free_port(), free_port()
    config = write_config(tmp_path, port=port, scripts=s, extra=textwrap.dedent(f"""
        [[trunks]]
        name = "provider"
        host = "127.0.0.1"
        port = {provider}
        register = false
        """), routes=f"""
[[routes]]
match = "^74951110001$"
script = "{s / 'shop1.sh'}"
[[routes]]
match = "^74951110002$"
script = "{s / 'shop2.sh'}"
""")
    sw = start_switch(tmp_path, config, port)
    try:
        for attempt in range(3):  # rc 254: another process took the port first; try again
            result = run_sipp("public_call.xml", port, tmp_path / f"sipp{attempt}",
                              service="74951110001", local_port=provider, timeout=15,
                              keys={"from_user": "79161234567", "from_name": "Customer",
                                    "sink_port": str(free_port(both=False))})
            if result.rc != 254:
                break
    finally:
        sw.stop()
    assert result.rc == 0, result.logs()
    assert "401" not in result.messages().split("INVITE", 1)[1][:200]  # no challenge
    lines = (s / "events.log").read_text().split("\n")
    assert lines[0].split()[:2] == ["incoming", "74951110001"]
    cdr = json.loads(sw.pbx("cdr", "--json").stdout)[0]
    assert cdr["called"] == "74951110001" and cdr["caller"] == "79161234567"
    assert cdr["disposition"] == "answered"
