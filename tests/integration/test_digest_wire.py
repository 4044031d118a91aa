"""Digest authentication on the wire, against a real `pbx run` (issue 9 items 1, 5, 15, 16).

* an Authorization holding octets that are not UTF-8 gets a final response (it used to raise in
  the HMAC check and leave the transaction open forever);
* a replayed Authorization, or credentials computed for another Request-URI, place no call;
* the challenge offers MD5 alone by default; a failed authentication is logged with user,
  source and reason, caller text escaped;
* failed attempts from one source back off, then get 403 (own switch: the block covers
  127.0.0.1 for a minute);
* the INVITE the switch sends a callee carries the caller's configured name and lists REFER.
"""

from __future__ import annotations

import itertools
import json
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.sip.address import parse_name_addr
from pbxcore.sip.digest import authorization_for, parse_auth_params
from pbxcore.sip.message import Request, Response, parse_message
from tests.integration.switch_harness import (
    SwitchProcess,
    free_port,
    sip_exchange,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac
from tests.peers.helpers import poll

DIAL = """#!/bin/sh
case "$PBX_EVENT" in
  incoming)
    case "$PBX_CALLED" in
      300) echo answer; echo "play moh loop=20";;
      *) echo "dial 1002 timeout=5";;
    esac;;
esac
"""
NAMED_USER = '[[users]]\nextension = "1003"\npassword = "secret1003"\nname = "Zoë \\"Z\\" Q"\n'


def routes(dir: Path) -> str:
    script = dir / "dial.sh"
    script.write_text(DIAL)
    script.chmod(0o755)
    return f"""
        [[routes]]
        match = "^(1002|2000|300)$"
        script = "{script}"
        """


def launch(dir: Path) -> SwitchProcess:
    port = free_port()
    config = write_config(dir, port=port, routes=routes(dir), extra=NAMED_USER)
    return start_switch(dir, config, port)


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    s = launch(tmp_path_factory.mktemp("digest_wire"))
    try:
        yield s
    finally:
        s.stop()


_hosts = itertools.count(10)


def new_source() -> str:
    """A loopback address of its own (127.0.0.0/8 is all local on Linux): the failure counters
    are per source, so tests that fail on purpose must not add up."""
    return f"127.0.0.{next(_hosts)}"


def exchange(port: int, data: bytes, source: str, *, transport: str = "udp",
             timeout: float = 3.0) -> list[bytes]:
    """Send from `source`, return every reply until the first final one (or the timeout)."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    out: list[bytes] = []
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        if transport == "udp":
            s.sendto(data, ("127.0.0.1", port))
        else:
            s.connect(("127.0.0.1", port))
            s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65535)
            except TimeoutError:
                break
            if not chunk:
                break
            if transport == "udp":
                out.append(chunk)
            else:
                buf += chunk
                out = [m for m in buf.split(b"\r\n\r\n") if m.startswith(b"SIP/2.0")]
            if any(not r.startswith(b"SIP/2.0 1") for r in out):
                break
    return out


def final(port: int, data: bytes, source: str, **kw: object) -> bytes | None:
    finals = [r for r in exchange(port, data, source, **kw)  # type: ignore[arg-type]
              if not r.startswith(b"SIP/2.0 1")]
    return finals[0] if finals else None


def register(port: int, *, user: str = "1001", auth: str | None = None, local_port: int = 5999,
             transport: str = "UDP", call_id: str | None = None, cseq: int = 1,
             extra: bytes = b"") -> bytes:
    lines = [
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0",
        f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        f"From: <sip:{user}@127.0.0.1>;tag={secrets.token_hex(4)}",
        f"To: <sip:{user}@127.0.0.1>",
        f"Call-ID: {call_id or uuid.uuid4().hex}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@127.0.0.1:{local_port}>",
        "Max-Forwards: 70",
    ]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    head = "\r\n".join(lines).encode()
    return head + extra + b"\r\nContent-Length: 0\r\n\r\n"


def status(reply: bytes | None) -> int | None:
    return int(reply.split(b" ", 2)[1]) if reply else None


def challenge_of(reply: bytes) -> str:
    msg = parse_message(reply)
    assert isinstance(msg, Response) and msg.status == 401, reply
    values = msg.headers.get_all("WWW-Authenticate")
    assert len(values) == 1 and "algorithm=MD5" in values[0], values  # MD5 alone by default
    return values[0]


def fresh_auth(port: int, *, user: str = "1001", password: str = "secret1001",
               uri: str | None = None, method: str = "REGISTER") -> str:
    challenge = challenge_of(final(port, register(port, user=user), new_source()) or b"")
    return authorization_for(challenge, method=method, uri=uri or f"sip:127.0.0.1:{port}",
                             username=user, password=password, cnonce=secrets.token_hex(4))


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("auth", [
    b'Digest username="u1", realm="pbxcore-test", nonce="a.b.\xff", uri="sip:x", '
    b'response="0123"',  # the reported input
    b'Digest username="\xff\xfe", realm="\xc3(", nonce="\xf0\x28\x8c\x28", uri="\xe2\x82", '
    b'response="\xff", cnonce="\x80", nc=\xff, qop=\xfe, algorithm=\xfd, opaque="\xfc"',
])
def test_authorization_with_non_utf8_octets_gets_a_final_response(
        sw: SwitchProcess, transport: str, auth: bytes) -> None:
    data = register(sw.port, transport=transport.upper(), extra=b"\r\nAuthorization: " + auth)
    reply = final(sw.port, data, new_source(), transport=transport)
    assert status(reply) == 401, reply
    assert "authentication failed: REGISTER user" in sw.log_text()


def test_invite_with_non_utf8_nonce_gets_a_final_response(sw: SwitchProcess) -> None:
    uac = Uac(sw.port, user="u2")
    try:
        invite = uac.build_invite("2000", 'Digest username="u2", realm="pbxcore-test", '
                                          'nonce="a.b.\udcff", uri="sip:2000@127.0.0.1", '
                                          'response="00"')
        uac._send(invite.to_bytes())
        resp = uac.final(3)
        assert resp is not None and resp.status == 401, resp
    finally:
        uac.close()


def test_syntactically_broken_authorization_is_400(sw: SwitchProcess) -> None:
    reply = final(sw.port, register(sw.port, auth='Digest username="1001, realm'), new_source())
    assert status(reply) == 400, reply


def test_replayed_register_is_re_challenged_stale(sw: SwitchProcess) -> None:
    auth = fresh_auth(sw.port)
    assert status(final(sw.port, register(sw.port, auth=auth), new_source())) == 200
    replay = final(sw.port, register(sw.port, auth=auth, local_port=6666), new_source())
    assert status(replay) == 401, replay
    assert parse_auth_params(challenge_of(replay or b""))[1].get("stale") == "TRUE"
    assert "replayed nonce (re-challenged, stale)" in sw.log_text()


def test_invite_credentials_for_one_number_do_not_call_another(sw: SwitchProcess) -> None:
    """Credentials computed for sip:1002 replayed under a new Call-ID to another number, and
    the same INVITE replayed as is: 401 both times, no call placed."""
    uac = Uac(sw.port, password="secret1001")
    try:
        first = uac.build_invite("1002")
        uac._send(first.to_bytes())
        resp = uac.final(3)
        assert resp is not None and resp.status == 401
        uac.ack(resp, first)
        challenge = resp.headers.get_all("WWW-Authenticate")[0]
        uri_1002 = f"sip:1002@127.0.0.1:{sw.port}"
        auth = authorization_for(challenge, method="INVITE", uri=uri_1002, username="1001",
                                 password="secret1001", cnonce="c0ffee")
        uac.call_id = uuid.uuid4().hex + "@attacker"
        moved = uac.build_invite("2000", auth)
        assert moved.uri != uri_1002
        uac._send(moved.to_bytes())
        resp = uac.final(3)
        assert resp is not None and resp.status == 401, resp
        uac.ack(resp, moved)
    finally:
        uac.close()
    assert "digest uri does not match the Request-URI" in sw.log_text()
    assert "@attacker" not in sw.pbx("cdr", "--json").stdout


def test_failed_authentication_is_logged_with_user_source_reason_escaped(
        sw: SwitchProcess) -> None:
    challenge = challenge_of(final(sw.port, register(sw.port), new_source()) or b"")
    auth = authorization_for(challenge, method="REGISTER", uri=f"sip:127.0.0.1:{sw.port}",
                             username="evil\x1b[31m\x07", password="x", cnonce="c")
    reply = final(sw.port, register(sw.port, user="1001", auth=auth, local_port=7777),
                  new_source())
    assert status(reply) == 401
    log = sw.log_text()
    line = next(x for x in log.splitlines() if "user 'evil" in x)
    assert "\x1b" not in line and "\\x1b[31m" in line, line
    assert "from 127.0.0." in line and "wrong credentials" in line, line
    assert "WARNING" in line or "warning" in line.lower(), line


def test_failures_back_off_then_403(tmp_path: Path) -> None:
    """Ten wrong passwords from one address: the later 401s are held back, then the address
    gets 403 for a while, even with the right password; the counters are in the log."""
    sw = launch(tmp_path)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(3)
            for _ in range(10):  # all sent at once: the back-off does not slow the counting
                s.sendto(register(sw.port, auth='Digest username="1001", realm="pbxcore-test", '
                                  'nonce="n", uri="sip:x", response="0"'), ("127.0.0.1", sw.port))
            time.sleep(0.5)
        right = fresh_auth(sw.port)
        reply = sip_exchange(sw.port, register(sw.port, auth=right))
        assert status(reply) == 403, reply
        # another address is not blocked
        assert status(final(sw.port, register(sw.port), new_source())) == 401
        log = sw.log_text()
        assert "(failures in 60 s: source 10, user 10)" in log, log[-3000:]
        assert "blocking source 127.0.0.1 for 60 s after 10 failures (403)" in log, log[-3000:]
        assert "authentication refused: REGISTER user '1001' from 127.0.0.1" in log
    finally:
        sw.stop()


def test_dialled_invite_has_configured_caller_name_and_allows_refer(sw: SwitchProcess) -> None:
    """Item 16: the callee sees the caller's configured `name` (it wins over the phone's
    display name, as Asterisk's callerid does), quoted per RFC 3261 §25.1; Allow has REFER."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as callee:
        callee.bind(("127.0.0.1", 0))
        callee.settimeout(5)
        port = callee.getsockname()[1]
        callee.sendto(register(sw.port, user="1002", local_port=port), ("127.0.0.1", sw.port))
        challenge = challenge_of(callee.recv(65535))
        auth = authorization_for(challenge, method="REGISTER", uri=f"sip:127.0.0.1:{sw.port}",
                                 username="1002", password="secret1002", cnonce="c")
        callee.sendto(register(sw.port, user="1002", local_port=port, auth=auth, cseq=2),
                      ("127.0.0.1", sw.port))
        assert status(callee.recv(65535)) == 200
        caller = Uac(sw.port, user="1003", password="secret1003", display="Phone Says")
        try:
            caller.start_invite("1002")
            resp = caller.final(3)
            assert resp is not None and resp.status == 401
            assert caller.invite is not None
            caller.ack(resp, caller.invite)
            auth = authorization_for(resp.headers.get_all("WWW-Authenticate")[0],
                                     method="INVITE", uri=caller.invite.uri, username="1003",
                                     password="secret1003", cnonce="c")
            caller._send(caller.build_invite("1002", auth).to_bytes())
            invite = None
            deadline = time.monotonic() + 5
            while invite is None and time.monotonic() < deadline:
                msg = parse_message(callee.recv(65535))
                if isinstance(msg, Request) and msg.method == "INVITE":
                    invite = msg
            assert invite is not None
            busy = "\r\n".join([
                "SIP/2.0 486 Busy Here", *(f"{h}: {invite.headers.get(h)}" for h in (
                    "Via", "From", "Call-ID", "CSeq")),
                f"To: {invite.headers.get('To')};tag=b", "Content-Length: 0", "", ""])
            callee.sendto(busy.encode(), ("127.0.0.1", sw.port))
        finally:
            caller.close()
    from_header = invite.headers.get("From") or ""
    assert from_header.startswith('"Zoë \\"Z\\" Q" <sip:1003@'), from_header
    assert parse_name_addr(from_header).display == 'Zoë "Z" Q'
    allow = [m.strip() for m in (invite.headers.get("Allow") or "").split(",")]
    assert "REFER" in allow and "INVITE" in allow, allow
    cdr = poll(lambda: next((c for c in json.loads(sw.pbx("cdr", "--json").stdout)
                             if c["sip_call_id"] == caller.call_id), None), timeout=5)
    assert cdr is not None and cdr["caller_name"] == 'Zoë "Z" Q', cdr


def test_every_200_ok_to_an_invite_allows_refer(sw: SwitchProcess) -> None:
    """The 200 OK answering the call and the one answering a re-INVITE (hold) list REFER."""
    uac = Uac(sw.port, user="1003", password="secret1003")
    try:
        ok = uac.call("300")
        assert ok is not None and ok.status == 200, ok
        assert "REFER" in (ok.headers.get("Allow") or ""), ok.headers.get("Allow")
        assert uac.invite is not None
        reinvite = uac.build_invite("300")
        reinvite.headers.set("To", uac.to_header)
        reinvite.headers.set("CSeq", f"{uac.cseq} INVITE")
        reinvite.body = reinvite.body.replace(b"a=sendrecv", b"a=sendonly")
        reinvite.headers.set("Content-Length", str(len(reinvite.body)))
        uac._send(reinvite.to_bytes())
        again = uac.final(3)
        assert again is not None and again.status == 200 and again.cseq[1] == "INVITE", again
        assert "REFER" in (again.headers.get("Allow") or ""), again.headers.get("Allow")
        uac.ack(again, reinvite)
        assert (bye := uac.bye()) is not None and bye.status == 200
    finally:
        uac.close()


def test_replies_arrive_for_a_broken_header_over_tcp_too(sw: SwitchProcess) -> None:
    replies = exchange(sw.port, register(sw.port, transport="TCP", auth='Digest nonce="\u00b2"'),
                       new_source(), transport="tcp")
    assert [status(r) for r in replies] == [401]
