"""Hypothesis fuzzing of the transaction user: every request gets exactly one final response and no
server transaction outlives the run (issue 9 item 1: "test it by fuzzing the TU, not only the
parser").

The switch runs in-process in its own thread and event loop (memory store, real scripts, real UDP
socket on 127.0.0.1, T1 shortened so that Timers H/I/J/L end transactions within a second).  The
test sends generated requests: INVITE with random or hostile SDP to public, authenticated and
unknown numbers, REGISTER with hostile Contact/Expires (also after a real digest round, so the
registrar itself is reached), OPTIONS, BYE, CANCEL, INFO, REFER, unknown methods, in-dialog ones,
random extra headers and hostile numbers.  Each request must get exactly one final response (one
distinct status and To tag; UDP retransmissions of it are fine), an ACK none; at the end every
server transaction must be gone.  `PBX_FUZZ_TU_EXAMPLES` sets the example count (default 120).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pbxcore.sip.digest import authorization_for
from tests.integration.guard_harness import guarded_switch
from tests.unit.sip.strategies import header_text, numbers, sdp_bodies

EXAMPLES = int(os.environ.get("PBX_FUZZ_TU_EXAMPLES", "120"))
T = TypeVar("T")


class ThreadedSwitch:
    """`guarded_switch` running in a thread of its own, so a blocking test can drive it."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="switch", daemon=True)
        self.thread.start()
        self._cm = guarded_switch(tmp_path, t1=0.01)
        self.running, self.port = self.run(self._cm.__aenter__())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def server_transactions(self) -> int:
        async def count() -> int:
            return self.running.endpoint.layer.server_transactions()
        return self.run(count())

    def live_calls(self) -> int:
        async def count() -> int:
            return len(self.running.switch.calls)
        return self.run(count())

    def close(self) -> None:
        try:
            self.run(self._cm.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSwitch]:
    sw = ThreadedSwitch(tmp_path_factory.mktemp("tu-fuzz"))
    try:
        yield sw
    finally:
        sw.close()


_STATUS = re.compile(rb"^SIP/2\.0 ([0-9]{3}) ")
_TO_TAG = re.compile(rb"\r\n(?:To|t): [^\r\n]*;tag=([^;\s>\r]+)", re.IGNORECASE)


class Phone:
    """A blocking raw UDP client: sends bytes, reads the finals for one Call-ID, answers BYEs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local_port = self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def finals(self, call_id: str, *, timeout: float = 5.0, settle: float = 0.03) -> list[bytes]:
        """Final responses for `call_id`: the first within `timeout`, then `settle` more."""
        marker = b"\r\nCall-ID: " + call_id.encode() + b"\r\n"
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            if data.startswith(b"BYE "):
                self.send(_ok(data))  # the switch's hang-up of an answered fuzz call
                continue
            m = _STATUS.match(data)
            if m and int(m.group(1)) >= 200 and marker in data:
                if not got:
                    deadline = time.monotonic() + settle
                got.append(data)
        return got

    def close(self) -> None:
        self.sock.close()


def _ok(request: bytes) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = [h for h in head if h.split(b":", 1)[0].lower() in (b"via", b"from", b"to", b"call-id",
                                                               b"cseq")]
    return b"\r\n".join([b"SIP/2.0 200 OK", *keep, b"Content-Length: 0", b"", b""])


def _header(final: bytes, name: bytes) -> bytes:
    for line in final.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        if line.split(b":", 1)[0].strip().lower() == name.lower():
            return line.split(b":", 1)[1].strip()
    return b""


@dataclass
class Fuzzed:
    method: str
    user: str
    to_tag: bool
    cseq: str
    max_forwards: str
    headers: list[tuple[str, str]]
    body: bytes
    content_type: str | None
    authed: bool

    def build(self, port: int, local_port: int, call_id: str, *, auth: str | None = None,
              cseq: str | None = None) -> bytes:
        to_tag = ";tag=" + secrets.token_hex(4) if self.to_tag else ""
        lines = [
            f"{self.method} sip:{self.user}@127.0.0.1:{port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex};rport",
            f"From: <sip:1001@127.0.0.1>;tag={secrets.token_hex(4)}",
            f"To: <sip:{self.user}@127.0.0.1:{port}>{to_tag}",
            f"Call-ID: {call_id}", f"CSeq: {cseq or self.cseq} {self.method}",
            f"Max-Forwards: {self.max_forwards}",
            f"Contact: <sip:1001@127.0.0.1:{local_port}>",
        ]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if auth is not None:
            lines.append(f"Authorization: {auth}")
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


HEADERS = ["Require", "Proxy-Require", "Supported", "Accept", "Expires", "Contact", "Event",
           "Refer-To", "Referred-By", "Subject", "X-Crm-Id", "User-Agent", "Retry-After",
           "Session-Expires", "Min-SE", "RSeq", "RAck", "P-Asserted-Identity", "Diversion",
           "Authorization", "Replaces", "Allow"]  # Content-Type: `Fuzzed.content_type`
_RARELY = st.sampled_from([False] * 7 + [True])  # uniform, unlike integers() near 0
METHODS = ["INVITE"] * 8 + ["REGISTER"] * 3 + ["OPTIONS", "BYE", "CANCEL", "INFO", "REFER",
                                                "MESSAGE", "SUBSCRIBE", "PRACK", "UPDATE",
                                                "NOTIFY", "FOO", "ACK"]
USERS = ["1", "10", "2", "2", "3", "30", "404", "1001", "%FF", "1%00", "\u00b2", "1*"]
INVITE_USERS = ["1", "1", "10", "2", "2", "3", "404", "\u00b2"]  # mostly public routes


def header_values(name: str) -> st.SearchStrategy[str]:
    if name in ("Expires", "Retry-After", "Session-Expires", "Min-SE", "RSeq"):
        return numbers(0, 2**33)
    if name == "Contact":
        return st.one_of(
            st.just("*"),
            numbers(0, 2**33).map(lambda n: f"<sip:1001@127.0.0.1:5062>;expires={n}"),
            numbers(0, 70000).map(lambda n: f"<sip:1001@127.0.0.1:{n}>"),
            header_text,
        )
    if name == "Authorization":
        return st.one_of(header_text, digest_credentials)
    return st.one_of(header_text, numbers())


#: Credentials shaped like ours (`<issued>.<salt>.<mac>`) with hostile parts: the issue's
#: `nonce="a.b.\xff"` made the HMAC check raise before it was fixed.
_NONCE_TAIL = st.text(alphabet=st.sampled_from([*"0123456789abcdef.", "\udcff", "\udc80", "\u00b2",
                                                 "\u00e9", "\u0663"]), max_size=8)
digest_credentials = st.tuples(st.one_of(st.just("\udcff"), _NONCE_TAIL), st.sampled_from(["1001", "1002", "nobody", ""])).map(
    lambda tu: f'Digest username="{tu[1]}", realm="pbxcore-test", nonce="a.b.{tu[0]}", '
               f'uri="sip:1@127.0.0.1", response="0123456789abcdef0123456789abcdef"')


@st.composite
def fuzzed_requests(draw: st.DrawFn) -> Fuzzed:
    method = draw(st.sampled_from(METHODS))
    names = draw(st.lists(st.sampled_from(HEADERS), max_size=4))
    headers = [(n, draw(header_values(n))) for n in names]
    if method in ("INVITE", "REGISTER") and draw(st.integers(0, 2)) == 0:
        headers.append(("Authorization", draw(digest_credentials)))
    if method == "INVITE":
        body = draw(st.one_of(sdp_bodies(), sdp_bodies(), st.binary(max_size=60), st.just(b"")))
    else:
        body = draw(st.one_of(st.just(b""), st.binary(max_size=30)))
    content_type = draw(st.sampled_from([None, "application/sdp", "application/sdp",
                                         "application/sdp", "application/SDP;x=1",
                                         "text/plain"]))
    return Fuzzed(
        method=method,
        user="1001" if method == "REGISTER" and draw(st.booleans()) else draw(
            st.sampled_from(INVITE_USERS if method == "INVITE" else USERS)),
        to_tag=draw(_RARELY),
        # Mostly valid, so most requests get past the parser to the TU (the parser has its own
        # fuzz run); sometimes hostile, for the stateless 400 path.
        cseq=draw(numbers(0, 2**32)) if draw(_RARELY) else "1",
        max_forwards=draw(numbers(0, 300)) if draw(_RARELY) else "70",
        headers=headers, body=body, content_type=content_type,
        authed=method in ("INVITE", "REGISTER") and draw(st.booleans()),
    )


def _one_exchange(phone: Phone, req: Fuzzed, port: int) -> int | None:
    """Send `req` (after a digest round if `req.authed`); its final status (None for ACK)."""
    auth: str | None = None
    if req.authed:
        # A digest round as a phone does it: the 401's challenge, then the fuzzed request with a
        # correct answer, so the registrar and the authenticated INVITE paths are fuzzed too.
        probe = Fuzzed(req.method, req.user, False, "1", "70", [], b"", None, False)
        probe_id = uuid.uuid4().hex + "@tu-fuzz"
        phone.send(probe.build(port, phone.local_port, probe_id))
        finals = phone.finals(probe_id)
        assert len({(_STATUS.match(f).group(1), _tag(f)) for f in finals}) == 1  # type: ignore[union-attr]
        _ack(phone, probe, finals[0], port)
        challenge = _header(finals[0], b"WWW-Authenticate").decode("utf-8", "surrogateescape")
        if challenge:
            auth = authorization_for(challenge, method=req.method,
                                     uri=f"sip:{req.user}@127.0.0.1:{port}", username="1001",
                                     password="secret1001", cnonce=secrets.token_hex(4))
    call_id = uuid.uuid4().hex + "@tu-fuzz"
    phone.send(req.build(port, phone.local_port, call_id, auth=auth))
    if req.method == "ACK":
        assert phone.finals(call_id, timeout=0.1) == []  # an ACK is never answered (§17)
        return None
    finals = phone.finals(call_id)
    distinct = {(_STATUS.match(f).group(1), _tag(f)) for f in finals}  # type: ignore[union-attr]
    assert len(distinct) == 1, f"{req.method}: {distinct or 'no final response'}"
    _ack(phone, req, finals[0], port)
    # 500 would be the guard catching our own bug (the digest HMAC check once raised on a nonce
    # that is not UTF-8; sip/digest.py now refuses it with a 401): any 500 is a bug found.
    assert not finals[0].startswith(b"SIP/2.0 500 "), \
        f"500 for {req.method} {req.user!r} (see the switch's log for the traceback)"
    return int(finals[0][8:11])


def _tag(final: bytes) -> bytes:
    m = _TO_TAG.search(final)
    return m.group(1) if m else b""


def _ack(phone: Phone, req: Fuzzed, final: bytes, port: int) -> None:
    """ACK a final response to an INVITE (§17.1.1.3 for non-2xx, §13.2.2.4 for 2xx)."""
    if req.method != "INVITE" or not final.startswith(b"SIP/2.0 "):
        return
    via = _header(final, b"Via")
    status = int(final[8:11])
    if status < 300:
        via = f"SIP/2.0/UDP 127.0.0.1:{phone.local_port};branch=z9hG4bK{uuid.uuid4().hex}".encode()
    cseq = _header(final, b"CSeq").split(b" ")[0]
    phone.send(b"\r\n".join([
        f"ACK sip:{req.user}@127.0.0.1:{port} SIP/2.0".encode("utf-8", "surrogateescape"),
        b"Via: " + via, b"From: " + _header(final, b"From"), b"To: " + _header(final, b"To"),
        b"Call-ID: " + _header(final, b"Call-ID"), b"CSeq: " + cseq + b" ACK",
        b"Max-Forwards: 70", b"Content-Length: 0", b"", b""]))


_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP {fmts}\r\na=fmtp:{fmtp} 0-15\r\n")
#: The issue's reproducers, always among the examples: '²' in the m= format list and in a=fmtp
#: (it passes isdigit(), int() refuses it), and a nonce holding the octet 0xff.
ISSUE_SDP_FORMAT = Fuzzed("INVITE", "1", False, "1", "70", [],
                          _SDP.format(fmts="0 \u00b2", fmtp="101").encode(), "application/sdp",
                          False)
ISSUE_SDP_FMTP = Fuzzed("INVITE", "1", False, "1", "70", [],
                        _SDP.format(fmts="0 101", fmtp="\u00b2").encode(), "application/sdp",
                        False)
ISSUE_NONCE = Fuzzed("REGISTER", "1001", False, "1", "70", [(
    "Authorization", 'Digest username="1001", realm="pbxcore-test", nonce="a.b.\udcff", '
                     'uri="sip:1001@127.0.0.1", response="0123456789abcdef0123456789abcdef"')],
    b"", None, False)


def test_every_fuzzed_request_gets_one_final_response_and_no_transaction_leaks(
        switch: ThreadedSwitch, capsys: pytest.CaptureFixture[str]) -> None:
    phone = Phone(switch.port)
    seen: dict[str, int] = {}
    statuses: dict[int, int] = {}
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(fuzzed_requests())
    @example(ISSUE_SDP_FORMAT)
    @example(ISSUE_SDP_FMTP)
    @example(ISSUE_NONCE)
    def exchange(req: Fuzzed) -> None:
        seen[req.method] = seen.get(req.method, 0) + 1
        status = _one_exchange(phone, req, switch.port)
        if status is not None:
            statuses[status] = statuses.get(status, 0) + 1

    try:
        exchange()
    finally:
        phone.close()
    deadline = time.monotonic() + 30
    while (switch.server_transactions() or switch.live_calls()) and time.monotonic() < deadline:
        time.sleep(0.05)
    with capsys.disabled():
        print(f"\n[fuzz] TU: {sum(seen.values())} requests {dict(sorted(seen.items()))}, "
              f"finals {dict(sorted(statuses.items()))}, {time.monotonic() - started:.1f} s")
    assert switch.server_transactions() == 0
    assert switch.live_calls() == 0
