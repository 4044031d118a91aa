"""Trunk registration on the wire: SipEndpoint + TrunkRegistrations in-process, SIPp playing the
provider's registrar (tests/sipp/provider_register.xml verifies our digest answers itself).

The handler below is exactly the wiring the switch needs: responses and time-outs go to the
trunks first.  Everything is on 127.0.0.1, bounded in time; SIPp is killed by pid by run_sipp.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pbxcore.call.trunks import TrunkRegistrations, called_number
from pbxcore.config import Trunk
from pbxcore.sip.message import Headers, Request, Response
from pbxcore.sip.peer import Peer
from pbxcore.sip.transaction import TransactionLayer
from pbxcore.transport.sip_endpoint import ListenSpec, SipEndpoint
from tests.integration.switch_harness import free_port
from tests.sipp.sipp_peer import SippResult, run_sipp

USER, PASSWORD = "4420700", "tr-unk pass"


class Handler:
    """A switch stand-in: offers responses and time-outs to the trunks first."""

    def __init__(self) -> None:
        self.trunks: TrunkRegistrations | None = None
        self.unclaimed: list[str] = []

    def on_request(self, tx: str, request: Request, source: Peer) -> None:
        self.unclaimed.append(request.method)

    def on_cancel(self, invite_tx: str, request: Request) -> None:
        pass

    def on_ack(self, tx: str, request: Request) -> None:
        pass

    def on_response(self, tx: str, response: Response) -> None:
        if self.trunks is None or not self.trunks.on_response(tx, response):
            self.unclaimed.append(f"response {response.status}")

    def on_timeout(self, tx: str, method: str) -> None:
        if self.trunks is None or not self.trunks.on_timeout(tx, method):
            self.unclaimed.append(f"timeout {method}")


def trunk(port: int, *, host: str = "127.0.0.1", password: str = PASSWORD,
          register: bool = True, expires: int = 300) -> Trunk:
    return Trunk("provider", host, port, "udp", USER, password, register, expires,
                 "provider.test", USER, re.compile(r"^0\d+$"), "", 0)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[SipEndpoint, Handler]]:
    handler = Handler()
    # Short T1 so that Timer F (64*T1) fires in 3.2 s instead of 32 s.
    ep = SipEndpoint(handler, TransactionLayer(t1=0.05))
    await ep.start([ListenSpec("udp", "127.0.0.1", 0)])
    yield ep, handler
    await ep.close()


async def until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pbxcore.trunks"]


def provider(tmp_path: Path, our_port: int, sipp_port: int, *, password: str = PASSWORD,
             expires: int = 2) -> asyncio.Task[SippResult]:
    return asyncio.create_task(asyncio.to_thread(
        run_sipp, "provider_register.xml", our_port, tmp_path / "sipp", service="provider",
        local_port=sipp_port, timeout=20,
        keys={"user": USER, "password": password, "expires": str(expires)}))


async def sipp_listening(port: int) -> None:
    """SIPp has bound its UDP port (so our first REGISTER is not lost to an ICMP error)."""
    def bound() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return True
            return False
    assert await until(bound, 10), "SIPp did not start"


async def test_register_refresh_unregister_against_sipp(
        endpoint: tuple[SipEndpoint, Handler], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pbxcore.trunks")
    ep, handler = endpoint
    sipp_port = free_port()
    sipp = provider(tmp_path, ep.bound[0].port, sipp_port)
    await sipp_listening(sipp_port)
    trunks = TrunkRegistrations(ep, [trunk(sipp_port, expires=120)])
    handler.trunks = trunks
    await trunks.start()
    # 2 s granted: the refresh is due after 1 s; SIPp challenges it and grants an hour.
    ok = await until(lambda: "trunk provider: registered for 3600 s" in lines(caplog), 8)
    if not ok:
        await trunks.stop(timeout=0.1)
        pytest.fail(f"{lines(caplog)}\n{(await sipp).logs()}")
    assert trunks.status() == {"provider": "registered for 3600 s"}
    await trunks.stop(timeout=5)
    assert trunks.status() == {"provider": "unregistered"}
    result = await sipp
    assert result.rc == 0, result.logs()
    assert lines(caplog) == [
        "trunk provider: registering", "trunk provider: registered for 2 s",
        "trunk provider: refreshing", "trunk provider: registered for 3600 s",
        "trunk provider: unregistering", "trunk provider: unregistered"]
    sent = result.messages().split("REGISTER sip:provider.test SIP/2.0")[1:]
    assert len(sent) == 6, result.messages()
    assert "Authorization" not in sent[0] and "nc=00000001" in sent[1]
    # The refresh re-uses the credentials (next nonce count), then answers the new challenge.
    assert "nc=00000002" in sent[2] and "Expires: 120" in sent[2]
    assert "nc=00000001" in sent[3] and "Expires: 120" in sent[3]
    assert "Expires: 0" in sent[4] and "Expires: 0" in sent[5]
    call_ids = {re.search(r"Call-ID: (\S+)", m).group(1) for m in sent}  # type: ignore[union-attr]
    assert len(call_ids) == 1
    assert handler.unclaimed == []


async def test_wrong_password_backs_off_and_says_so(
        endpoint: tuple[SipEndpoint, Handler], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pbxcore.trunks")
    ep, handler = endpoint
    sipp_port = free_port()
    sipp = provider(tmp_path, ep.bound[0].port, sipp_port)
    await sipp_listening(sipp_port)
    trunks = TrunkRegistrations(ep, [trunk(sipp_port, password="wrong")])
    handler.trunks = trunks
    await trunks.start()
    failed = "403 Forbidden, retry in 5 s"
    assert await until(lambda: trunks.status()["provider"] == failed, 5), trunks.status()
    assert "trunk provider: 403 Forbidden, retry in 5 s" in lines(caplog)
    result = await sipp
    assert result.rc != 0  # SIPp's verifyauth refused our answer: the password really is wrong
    await trunks.stop(timeout=0.2)


async def test_silent_registrar_times_out_and_backs_off(
        endpoint: tuple[SipEndpoint, Handler], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pbxcore.trunks")
    ep, handler = endpoint
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        trunks = TrunkRegistrations(ep, [trunk(silent.getsockname()[1])])
        handler.trunks = trunks
        await trunks.start()
        started = time.monotonic()
        ok = await until(lambda: trunks.status()["provider"] == "no response, retry in 5 s", 6)
        assert ok, trunks.status()
        assert time.monotonic() - started > 3  # Timer F = 64 * T1 = 3.2 s
        silent.settimeout(1)
        assert silent.recv(4096).startswith(b"REGISTER sip:provider.test SIP/2.0")
        await trunks.stop(timeout=0.1)
    assert handler.unclaimed == []


async def test_unresolvable_host_is_a_failure_with_back_off(
        endpoint: tuple[SipEndpoint, Handler]) -> None:
    ep, handler = endpoint

    async def nowhere(host: str, port: int, transport: str) -> list[str]:
        raise OSError("Name or service not known")

    trunks = TrunkRegistrations(ep, [trunk(5060, host="sip.invalid")], resolver=nowhere)
    handler.trunks = trunks
    await trunks.start()
    assert trunks.status() == {"provider": "cannot resolve sip.invalid, retry in 5 s"}
    assert trunks.is_trunk_source(Peer("udp", "127.0.0.1", 5060)) is None
    assert trunks.peer_for(trunk(5060)) is None
    await trunks.stop(timeout=0.1)


async def test_trunk_sources_are_matched_by_resolved_ip(
        endpoint: tuple[SipEndpoint, Handler]) -> None:
    ep, handler = endpoint

    async def table(host: str, port: int, transport: str) -> list[str]:
        return {"sip.provider.test": ["192.0.2.5", "2001:db8::5"]}[host]

    by_name = trunk(5060, host="sip.provider.test", register=False)
    trunks = TrunkRegistrations(ep, [by_name], resolver=table)
    await trunks.start()
    assert trunks.is_trunk_source(Peer("udp", "192.0.2.5", 40000)) is by_name
    assert trunks.is_trunk_source(Peer("tcp", "2001:0db8::5", 5060)) is by_name
    assert trunks.is_trunk_source(Peer("udp", "192.0.2.6", 5060)) is None
    assert trunks.is_trunk_source(Peer("udp", "not-an-ip", 5060)) is None
    assert trunks.status() == {"provider": "not registering"}
    assert trunks.peer_for(by_name) == Peer("udp", "192.0.2.5", 5060)
    assert trunks.peer_for(trunk(5060, host="elsewhere")) == Peer("udp", "192.0.2.5", 5060)
    await trunks.stop(timeout=0.1)


def invite(uri: str, to: str) -> Request:
    return Request("INVITE", uri, Headers([("To", to)]))


def test_called_number_prefers_the_request_uri_unless_it_is_our_contact() -> None:
    t = trunk(5060)
    assert called_number(t, invite("sip:02079460000@10.0.0.1", "<sip:x@p>")) == "02079460000"
    assert called_number(t, invite(f"sip:{USER}@10.0.0.1:5070", "<sip:4420711@p>")) == "4420711"
    assert called_number(t, invite("sip:10.0.0.1", "<tel:+4420712>")) == "+4420712"
    assert called_number(t, invite(f"sip:{USER}@10.0.0.1", "garbage<")) == USER
