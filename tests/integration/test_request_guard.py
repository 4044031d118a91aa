"""Every request that reaches the transaction user gets a final response, on the wire (issue 9
items 1, 2, 9): the switch runs in-process (memory store) on real UDP/TCP sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from pathlib import Path

import pytest

from pbxcore.call.switch import Switch
from pbxcore.sip.message import Response, parse_message
from tests.integration.guard_harness import (
    RawClient,
    ack_for,
    guarded_switch,
    request,
    sdp,
    wait_no_transactions,
)
from tests.integration.switch_harness import options_request

HUGE = "9" * 5000  # more digits than CPython's int() converts


async def test_superscript_digit_in_sdp_gets_a_final_4xx_over_udp(tmp_path: Path) -> None:
    """The issue's reproducer: '²' passes isdigit(), fails int(); the INVITE got only 100."""
    async with guarded_switch(tmp_path, t1=0.01) as (running, port):
        client = RawClient(port)
        try:
            for body in (sdp(4000, formats="0 \u00b2"), sdp(4000, formats="\u00b2"),
                         sdp(4000, fmtp="\u00b2")):
                data, call_id = request("INVITE", port, client.local_port, user="1", body=body,
                                        content_type="application/sdp")
                client.send(data)
                (final, *_) = await client.finals(call_id)
                assert 400 <= final.status < 500, final.status  # 488, or 486 from the script
                client.send(ack_for(final, port, client.local_port))
        finally:
            client.close()
        assert await wait_no_transactions(running) == 0


async def test_huge_numbers_get_400_over_udp(tmp_path: Path) -> None:
    async with guarded_switch(tmp_path) as (_running, port):
        client = RawClient(port)
        try:
            good, _ = request("OPTIONS", port, client.local_port)
            cases = [
                good.replace(b"CSeq: 1 OPTIONS", f"CSeq: {HUGE} OPTIONS".encode()),
                good.replace(b"Max-Forwards: 70", f"Max-Forwards: {HUGE}".encode()),
                good.replace(b"Content-Length: 0", f"Content-Length: {HUGE}".encode()),
                good.replace(b"127.0.0.1:%d;branch" % client.local_port,
                             f"127.0.0.1:{HUGE};branch".encode()),
            ]
            for data in cases:
                call_id = parse_call_id(data)
                client.send(data)
                # Raw: the stateless 400 echoes the CSeq as received, which no parser takes.
                reply = await _raw_reply(client, call_id)
                assert reply.startswith(b"SIP/2.0 400 "), data[:80]
        finally:
            client.close()


async def _raw_reply(client: RawClient, call_id: str, timeout: float = 5.0) -> bytes:
    marker = f"\r\nCall-ID: {call_id}\r\n".encode()
    return await client.wait_for(lambda data: marker in data, timeout)


def parse_call_id(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.startswith(b"Call-ID: "):
            return line[9:].decode()
    raise AssertionError("no Call-ID")


def _tcp_read_until(sock: socket.socket, count: int, timeout: float = 5.0) -> tuple[list[bytes], bool]:
    """Read responses until `count` arrived or EOF/timeout; (responses, closed by the switch)."""
    buf = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65535)
        except TimeoutError:
            break
        if not chunk:
            closed = True
            break
        buf += chunk
        if buf.count(b"SIP/2.0 ") >= count and buf.endswith(b"\r\n\r\n"):
            break
    return [b"SIP/2.0 " + m for m in buf.split(b"SIP/2.0 ")[1:]], closed


def _tcp(request_bytes: bytes, port: int) -> bytes:
    return request_bytes.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")


async def test_tcp_huge_cseq_then_pipelined_options_on_the_same_connection(tmp_path: Path
                                                                          ) -> None:
    """Framing is intact (Content-Length is fine), so the stream goes on: 400, then 200."""
    async with guarded_switch(tmp_path) as (_running, port):
        bad = _tcp(options_request(port).replace(b"CSeq: 1 OPTIONS",
                                                 f"CSeq: {HUGE} OPTIONS".encode()), port)
        good = _tcp(options_request(port), port)

        def exchange() -> tuple[list[bytes], bool]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(bad + good)
                return _tcp_read_until(s, 2)

        replies, _closed = await asyncio.to_thread(exchange)
        assert [r[:11] for r in replies] == [b"SIP/2.0 400", b"SIP/2.0 200"]


async def test_tcp_huge_content_length_gets_400_and_close_and_the_next_connection_works(
        tmp_path: Path) -> None:
    """A Content-Length nobody can honour is a framing error: the stream cannot be cut any
    more (RFC 3261 §18.3), so 400 and close; the request pipelined behind it is lost with the
    stream, and the client's next connection is served."""
    async with guarded_switch(tmp_path) as (_running, port):
        bad = _tcp(options_request(port).replace(b"Content-Length: 0",
                                                 f"Content-Length: {HUGE}".encode()), port)
        good = _tcp(options_request(port), port)

        def exchange(data: bytes, count: int) -> tuple[list[bytes], bool]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(data)
                return _tcp_read_until(s, count)

        replies, closed = await asyncio.to_thread(exchange, bad + good, 2)
        assert [r[:11] for r in replies] == [b"SIP/2.0 400"] and closed
        replies, _ = await asyncio.to_thread(exchange, good, 1)
        assert [r[:11] for r in replies] == [b"SIP/2.0 200"]


async def test_internal_error_answers_500_logs_traceback_and_ends_the_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(self: Switch, *args: object) -> None:
        raise RuntimeError("a bug in the registrar")

    monkeypatch.setattr(Switch, "_register", broken)
    async with guarded_switch(tmp_path, t1=0.01) as (running, port):
        client = RawClient(port)
        try:
            hostile = f"evil\x1b[31m{uuid.uuid4().hex}"
            data, call_id = request("REGISTER", port, client.local_port, user="1001",
                                    call_id=hostile)
            with caplog.at_level(logging.ERROR, logger="pbxcore.switch"):
                client.send(data)
                finals = await client.finals(call_id, settle=0.2)
        finally:
            client.close()
        assert {(f.status, f.reason) for f in finals} == {(500, "Server Internal Error")}
        (record,) = [r for r in caplog.records if "internal error handling" in r.getMessage()]
        assert record.exc_info is not None and "a bug in the registrar" in str(record.exc_info[1])
        assert "\x1b" not in record.getMessage() and "\\x1b" in record.getMessage()
        assert await wait_no_transactions(running) == 0


async def test_burst_of_bad_requests_leaves_no_transaction(tmp_path: Path) -> None:
    """Before the guard each of these left a server transaction that never ended (and memory
    that grew): the INVITEs sat in Proceeding, which has no timer."""
    async with guarded_switch(tmp_path, t1=0.01) as (running, port):
        client = RawClient(port)
        pending: list[str] = []
        try:
            for i in range(30):
                kind = i % 3
                if kind == 0:
                    data, call_id = request("INVITE", port, client.local_port, user="1",
                                            body=sdp(4000, formats="\u00b2"),
                                            content_type="application/sdp")
                elif kind == 1:
                    data, call_id = request("INVITE", port, client.local_port, user="1",
                                            body=sdp(4000, fmtp="\u00b2"),
                                            content_type="application/sdp")
                else:
                    nonce = 'Authorization: Digest username="1001", realm="pbxcore-test", ' \
                            'nonce="a.b.\udcff", uri="sip:1001@127.0.0.1", response="00"\r\n'
                    data, call_id = request("REGISTER", port, client.local_port,
                                            user="1001", extra=nonce)
                client.send(data)
                pending.append(call_id)
            for call_id in pending:
                finals = await client.finals(call_id)
                assert finals, call_id
                assert finals[0].status >= 400
                if finals[0].cseq[1] == "INVITE":
                    client.send(ack_for(finals[0], port, client.local_port))
        finally:
            client.close()
        assert await wait_no_transactions(running) == 0


async def test_restarted_phone_reusing_branch_and_call_id_gets_a_new_call_and_cdr(
        tmp_path: Path) -> None:
    """Issue 9 item 9 on the wire: the second INVITE (same branch, Call-ID and CSeq, new From
    tag, after the first call ended) used to get the first call's 200 OK back."""
    async with guarded_switch(tmp_path) as (running, port):
        client = RawClient(port)
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        call_id = uuid.uuid4().hex + "@restarted"
        tags: list[str] = []
        try:
            for from_tag in ("firstrun", "secondrun"):
                data, _ = request("INVITE", port, client.local_port, user="2", call_id=call_id,
                                  branch=branch, from_tag=from_tag, body=sdp(4000),
                                  content_type="application/sdp")
                client.send(data)
                (final, *_) = await client.finals(call_id)
                assert final.status == 200
                assert f"tag={from_tag}" in (final.headers.get("From") or "")
                tags.append(final.headers.get("To") or "")
                client.send(ack_for(final, port, client.local_port, user="2"))
                bye = await _wait_bye(client)  # the script hangs up: the call is over
                client.send(_ok_for(bye))
                await _wait_cdrs(running, len(tags))
        finally:
            client.close()
        assert tags[0] != tags[1]  # two dialogs
        cdrs = await running.deps.store.cdrs()
        assert len(cdrs) == 2 and all(c.end is not None for c in cdrs)
        assert {c.sip_call_id for c in cdrs} == {call_id}


async def _wait_bye(client: RawClient, timeout: float = 10.0) -> bytes:
    return await client.wait_for(lambda data: data.startswith(b"BYE "), timeout)


def _ok_for(bye: bytes) -> bytes:
    msg = parse_message(bye)
    assert not isinstance(msg, Response)
    lines = ["SIP/2.0 200 OK"]
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        lines += [f"{name}: {v}" for v in msg.headers.get_all(name)]
    return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()


async def _wait_cdrs(running: object, count: int, timeout: float = 10.0) -> None:
    store = running.deps.store  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cdrs = await store.cdrs()
        if len(cdrs) >= count and all(c.end is not None for c in cdrs):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} closed CDRs")


async def test_safety_nets_behind_the_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """If the TU itself raises, the endpoint answers 500; a call task that ends without a
    final response answers 500.  Either way the transaction ends."""
    import pbxcore.call.switch as switch_module

    def broken_tu(self: Switch, *args: object) -> None:
        raise RuntimeError("the guard itself failed")

    async def silent_call(call: object) -> None:
        return None  # a bug: the call ends, nothing answered the INVITE

    async with guarded_switch(tmp_path, t1=0.01) as (running, port):
        client = RawClient(port)
        try:
            monkeypatch.setattr(switch_module, "run_call", silent_call)
            data, call_id = request("INVITE", port, client.local_port, user="1", body=sdp(4000),
                                    content_type="application/sdp")
            client.send(data)
            (final, *_) = await client.finals(call_id)
            assert final.status == 500
            client.send(ack_for(final, port, client.local_port))
            monkeypatch.setattr(Switch, "on_request", broken_tu)
            data, call_id = request("OPTIONS", port, client.local_port)
            client.send(data)
            (final, *_) = await client.finals(call_id)
            assert (final.status, final.reason) == (500, "Server Internal Error")
        finally:
            client.close()
        assert await wait_no_transactions(running) == 0
