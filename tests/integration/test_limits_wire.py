"""[limits] on the wire (issue 9 item 6): a real `pbx run`, real sockets from 127.0.0.x.

Linux routes all of 127.0.0.0/8 to loopback, so binding a client to 127.0.0.2 or 127.0.0.3 makes
it a different source address; loopback is trusted by default, so these switches set
`trusted = []`.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    options_ping,
    write_config,
)

ROUTE = """
    [[routes]]
    match = "^500$"
    script = "{script}"
    public = true
    fallback = ["hangup"]
    """


def options(port: int, local: tuple[str, int], transport: str = "UDP") -> bytes:
    return (
        f"OPTIONS sip:pbx@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch=z9hG4bK{uuid.uuid4().hex[:12]}"
        ";rport\r\n"
        f"From: <sip:probe@{local[0]}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:pbx@127.0.0.1:{port}>\r\nCall-ID: {uuid.uuid4().hex}@test\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def invite(port: int, local: tuple[str, int]) -> bytes:
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    return (
        f"INVITE sip:500@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
        f"From: <sip:caller@{local[0]}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:500@127.0.0.1:{port}>\r\nCall-ID: {uuid.uuid4().hex}@test\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:caller@{local[0]}:{local[1]}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def start(dir: Path, limits: str, *, nofile: tuple[int, int] | None = None) -> SwitchProcess:
    """`pbx run` with `limits` as its [limits] table and, optionally, RLIMIT_NOFILE set for
    the child before it starts (soft, hard)."""
    script = dir / "answer.sh"
    script.write_text('#!/bin/sh\ncase "$PBX_EVENT" in incoming) echo answer; echo hangup;; '
                      'esac\n')
    script.chmod(0o755)
    port = free_port()
    config = write_config(dir, port=port, routes=ROUTE.format(script=script),
                          extra="[limits]\n" + limits + "\n")
    log = dir / "pbx.log"

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pbxcore", "run", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
            preexec_fn=limit)
    sw = SwitchProcess(dir, config, port, proc, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pbx run exited {proc.returncode}:\n{sw.log_text()}")
        if options_ping(port, timeout=0.3):
            return sw
    sw.stop()
    raise RuntimeError(f"pbx run did not answer:\n{sw.log_text()}")


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[Callable[..., SwitchProcess]]:
    started: list[SwitchProcess] = []

    def make(limits: str, **kw: object) -> SwitchProcess:
        sw = start(tmp_path, limits, **kw)  # type: ignore[arg-type]
        started.append(sw)
        return sw

    yield make
    for sw in started:
        sw.stop()


def tcp_client(port: int, source: str = "127.0.0.2") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def tcp_answer(s: socket.socket, port: int, timeout: float = 5.0) -> bytes:
    """Send OPTIONS on an open connection, return the reply (b"" when the switch closed it)."""
    s.sendall(options(port, s.getsockname()[:2], "TCP"))
    return read_until_closed_or(s, timeout, b"\r\n\r\n")


def read_until_closed_or(s: socket.socket, timeout: float, marker: bytes | None = None) -> bytes:
    s.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65535)
        except (ConnectionResetError, TimeoutError):
            return buf
        if not chunk:
            return buf
        buf += chunk
        if marker is not None and marker in buf:
            return buf
    return buf


def closed_by_peer(s: socket.socket, timeout: float) -> bool:
    """True if the switch closes the connection (EOF or reset) within `timeout` seconds."""
    s.settimeout(timeout)
    try:
        return s.recv(65535) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_tcp_per_source_cap(switch: Callable[..., SwitchProcess]) -> None:
    sw = switch("tcp_per_source = 3\ntcp_idle = 30\ntrusted = []")
    allowed = [tcp_client(sw.port) for _ in range(3)]
    try:
        for s in allowed:
            assert tcp_answer(s, sw.port).startswith(b"SIP/2.0 200")
        extra = tcp_client(sw.port)
        assert closed_by_peer(extra, 5.0)  # accepted and closed at once: no descriptor held
        extra.close()
        other = tcp_client(sw.port, source="127.0.0.3")  # another address is not affected
        assert tcp_answer(other, sw.port).startswith(b"SIP/2.0 200")
        other.close()
        assert tcp_answer(allowed[0], sw.port).startswith(b"SIP/2.0 200")  # still served
        allowed.pop().close()  # frees a slot for 127.0.0.2
        again = None
        for _ in range(50):  # the switch notices the close asynchronously: bounded retries
            again = tcp_client(sw.port)
            reply = tcp_answer(again, sw.port, timeout=1.0)
            if reply.startswith(b"SIP/2.0 200"):
                break
            again.close()
            again = None
            time.sleep(0.1)
        assert again is not None
        allowed.append(again)
    finally:
        for s in allowed:
            s.close()
    log = sw.log_text()
    assert "tcp: connection from 127.0.0.2 refused: 3 open from it" in log
    assert "tcp_per_source 3" in log


def test_tcp_idle_without_a_complete_message(switch: Callable[..., SwitchProcess]) -> None:
    sw = switch("tcp_idle = 1.5\ntrusted = []")
    silent = tcp_client(sw.port)
    partial = tcp_client(sw.port)
    talking = tcp_client(sw.port)
    try:
        partial.sendall(options(sw.port, partial.getsockname()[:2], "TCP")[:40])
        assert tcp_answer(talking, sw.port).startswith(b"SIP/2.0 200")
        assert closed_by_peer(silent, 15.0)
        assert closed_by_peer(partial, 15.0)
        # A connection that delivered a complete request keeps the long idle time (300 s).
        assert tcp_answer(talking, sw.port).startswith(b"SIP/2.0 200")
    finally:
        for s in (silent, partial, talking):
            s.close()
    assert sw.log_text().count("(no complete message)") >= 2


def test_udp_flood_from_one_source_is_refused_others_are_served(
        switch: Callable[..., SwitchProcess]) -> None:
    sw = switch("requests_per_source = 20\nwindow = 2\ntrusted = []")
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.bind(("127.0.0.3", 0))
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    legit = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    legit.bind(("127.0.0.2", 0))
    try:
        sent_legit = answered_legit = 0
        # One burst, as fast as the loop sends: it must fit the switch's UDP receive buffer
        # (UDP_RCVBUF), or the kernel drops the other client's requests with the flood's.
        for i in range(300):
            flood.sendto(options(sw.port, flood.getsockname()), ("127.0.0.1", sw.port))
            if i % 30 == 0:  # 10 requests from another address while the flood goes on
                legit.sendto(options(sw.port, legit.getsockname()), ("127.0.0.1", sw.port))
                sent_legit += 1
        legit.settimeout(5)
        while answered_legit < sent_legit:
            try:
                reply = legit.recv(65535)
            except TimeoutError:
                break
            answered_legit += reply.startswith(b"SIP/2.0 200")
        replies: list[bytes] = []
        flood.settimeout(2)
        while True:
            try:
                replies.append(flood.recv(65535))
            except TimeoutError:
                break
    finally:
        flood.close()
        legit.close()
    ok = [r for r in replies if r.startswith(b"SIP/2.0 200")]
    busy = [r for r in replies if r.startswith(b"SIP/2.0 503")]
    assert answered_legit == sent_legit == 10
    assert 1 <= len(ok) <= 40  # the limit, in at most two windows
    assert 1 <= len(busy) <= 2 and b"Retry-After: 4\r\n" in busy[0]
    assert len(ok) + len(busy) < 100  # the rest was dropped unanswered
    log = sw.log_text()
    assert 1 <= log.count("rate limit: 127.0.0.3 sent more than 20 messages in 2s") <= 2
    assert "127.0.0.2" not in log


def test_soft_nofile_limit_is_raised_to_the_hard_limit(
        switch: Callable[..., SwitchProcess]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    sw = switch("", nofile=(256, target))
    limits = Path(f"/proc/{sw.proc.pid}/limits").read_text()
    row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert row.split()[3:5] == [str(target), str(target)]
    assert f"open files limit: {target} (raised from 256)" in sw.log_text()


def test_descriptor_reserve_keeps_calls_working_under_a_connection_flood(
        switch: Callable[..., SwitchProcess]) -> None:
    # 300 descriptors, 200 kept in reserve: at most 100 TCP connections, whatever the caps say.
    sw = switch("tcp_per_source = 10000\ntcp_total = 10000\nfd_reserve = 200\ntrusted = []",
                nofile=(300, 300))
    conns: list[socket.socket] = []
    try:
        for _ in range(160):
            conns.append(tcp_client(sw.port))
        refused = sum(closed_by_peer(s, 0.05) for s in conns)
        assert refused >= 60 - 5  # a few may still be in the accept queue
        # A call still works: the script is spawned (pipes) and the 200 OK sent.
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.2", 0))
        udp.settimeout(10)
        udp.sendto(invite(sw.port, udp.getsockname()), ("127.0.0.1", sw.port))
        statuses = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and 200 not in statuses:
            try:
                statuses.append(int(udp.recv(65535).split(b" ", 2)[1]))
            except TimeoutError:
                break
        udp.close()
        assert 200 in statuses
    finally:
        for s in conns:
            s.close()
    log = sw.log_text()
    assert "out of system resource" not in log
    assert "tcp_total 100" in log
    assert log.count("tcp: connection from 127.0.0.2 refused") <= 3  # once per 2 s window


def test_out_of_descriptors_pauses_accepting_instead_of_spinning(
        switch: Callable[..., SwitchProcess]) -> None:
    # No reserve: the process's other descriptors make accept() meet EMFILE itself.
    sw = switch("tcp_per_source = 10000\ntcp_total = 10000\nfd_reserve = 0\ntrusted = []",
                nofile=(160, 160))
    conns: list[socket.socket] = []
    try:
        for _ in range(200):
            conns.append(tcp_client(sw.port))
        time.sleep(2.5)  # two pause/resume rounds at least
        assert options_ping(sw.port)  # UDP is still served
    finally:
        for s in conns:
            s.close()
    reply = b""
    for _ in range(50):  # accepting resumes within ACCEPT_PAUSE once descriptors are free
        s = tcp_client(sw.port, source="127.0.0.3")
        reply = tcp_answer(s, sw.port, timeout=1.0)
        s.close()
        if reply.startswith(b"SIP/2.0 200"):
            break
        time.sleep(0.2)
    assert reply.startswith(b"SIP/2.0 200")
    log = sw.log_text()
    assert "out of system resource" not in log
    assert 1 <= log.count("tcp accept failed: Too many open files") <= 2  # once a minute
    assert os.path.getsize(sw.log) < 200_000


def test_a_tcp_peer_that_never_reads_is_cut_off(switch: Callable[..., SwitchProcess]) -> None:
    sw = switch("requests_per_source = 0\ntrusted = []")  # no rate limit: only the queue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
    s.bind(("127.0.0.2", 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", sw.port))
    local = s.getsockname()[:2]
    cut = False
    try:
        for _ in range(400):  # up to 40,000 pipelined OPTIONS (~14 MB of answers)
            try:
                s.sendall(b"".join(options(sw.port, local, "TCP") for _ in range(100)))
            except (ConnectionResetError, BrokenPipeError):
                cut = True
                break
            except TimeoutError:
                break  # the switch stopped reading without cutting us off: the bug
        if not cut:
            cut = closed_by_peer(s, 5.0)
    finally:
        s.close()
    assert cut
    assert "tcp: 127.0.0.2:" in sw.log_text() and "reads nothing of what we send" in sw.log_text()
    assert options_ping(sw.port)
