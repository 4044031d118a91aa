"""Path (RFC 3327) end to end on a real `pbx run`: a phone registers "through a proxy" (its
REGISTER carries the Path a proxy adds), the 200 echoes it (Supported: path), and a call to the
phone is sent to the proxy (the first Path hop) with the Path as Route and the phone's contact as
Request-URI (loose routing, RFC 3261 §16.12), not to the REGISTER's source."""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path

from pbxcore.sip.build import make_response
from pbxcore.sip.message import Request, parse_message
from tests.integration.switch_harness import free_port, start_switch, write_config
from tests.integration.uac import Uac
from tests.integration.uas import Phone

USERS = {"1001": "pw1001", "1002": "pw1002"}


def test_calls_to_a_phone_registered_with_path_go_via_the_proxy(tmp_path: Path) -> None:
    s = tmp_path / "s"
    s.mkdir()
    script = s / "one.sh"
    script.write_text('#!/bin/sh\ncase "$PBX_EVENT" in incoming) echo "dial 1002 timeout=5";;\n'
                      'dial) echo "reject busy";;\nesac\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    routes = f'[[routes]]\nmatch = "^1$"\nscript = "{script}"\npublic = true\n'
    sw = start_switch(tmp_path, write_config(tmp_path, port=port, routes=routes, scripts=s,
                                             users=USERS), port)
    proxy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    proxy.bind(("127.0.0.1", 0))
    proxy.settimeout(0.2)
    hop = f"sip:127.0.0.1:{proxy.getsockname()[1]};lr"
    phone = Phone(port, "1002", USERS["1002"], "answer")
    caller = Uac(port)
    try:
        assert phone.register(extra=(f"Path: <{hop}>", "Supported: path")) == 200
        caller.start_invite("1")
        invite = None
        deadline = time.monotonic() + 10
        while invite is None and time.monotonic() < deadline:
            try:
                data, addr = proxy.recvfrom(65535)
            except TimeoutError:
                continue
            msg = parse_message(data)
            if isinstance(msg, Request) and msg.method == "INVITE":
                invite = msg
        assert invite is not None, "the INVITE did not reach the first Path hop"
        assert invite.uri == f"sip:1002@127.0.0.1:{phone.port}"
        assert invite.headers.get_all("Route") == [f"<{hop}>"]
        proxy.sendto(make_response(invite, 486, to_tag="busyhere").to_bytes(), addr)
        final = caller.final(10)
        assert final is not None and final.status == 486  # the script's `reject busy`
        phone.sock.settimeout(0.3)
        try:
            leaked = phone.sock.recv(65535)
        except TimeoutError:
            leaked = b""
        assert not leaked.startswith(b"INVITE"), "the INVITE went to the REGISTER's source"
    finally:
        caller.close()
        phone.close()
        proxy.close()
        sw.stop()
