"""`dial` in process: the switch as B2BUA between a caller and a registered phone.  A hold
re-INVITE from either side (RFC 3264 §8.4) is answered and the other side hears hold music (real
RTP on 127.0.0.1); a phone registered over TCP is rung over that connection."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from pbxcore.rtp.g711 import ulaw_decode
from pbxcore.sip.message import Request
from pbxcore.testing.inproc import InProcSwitch, Phone, new_token, settle
from tests.unit.call.inproc_site import (
    USERS,
    CallerDialog,
    answered,
    call,
    closed_cdr,
    events,
    start,
)

DIAL = {"d.sh": 'incoming) echo "dial 1002 timeout=5";;\ndial) echo "reject busy";;'}


async def registered_agent(sw: InProcSwitch, transport: str = "udp") -> Phone:
    agent = sw.phone("10.0.0.2", transport=transport)
    await agent.open_rtp()
    assert (await agent.register("1002", USERS["1002"])).status == 200
    return agent


async def agent_answers(agent: Phone) -> tuple[Request, str]:
    """The agent's phone rings and answers the switch's INVITE; (INVITE, our To tag)."""
    invite = await agent.request("INVITE")
    tag = new_token()
    agent.send(agent.reply(invite, 180, to_tag=tag))
    agent.send(agent.reply(invite, 200, to_tag=tag, body=agent.sdp()))
    ack = await agent.request("ACK", call_id=invite.call_id)
    assert ack.cseq[0] == invite.cseq[0]
    return invite, tag


def origin(sdp: bytes) -> list[str]:
    line = next(x for x in sdp.decode().splitlines() if x.startswith("o="))
    return line[2:].split()


def loudness(packets: list[bytes]) -> float:
    """RMS of the PCMU audio in `packets` (RTP header skipped, events ignored); 0 for none."""
    pcm = b"".join(ulaw_decode(p[12:]) for p in packets if len(p) > 12 and p[1] & 0x7F == 0)
    n = len(pcm) // 2
    return (sum(x * x for x in struct.unpack(f"<{n}h", pcm[: 2 * n])) / n) ** 0.5 if n else 0.0


async def listen(phone: Phone, seconds: float) -> list[bytes]:
    """The RTP packets that reach `phone` during the next `seconds` (real time)."""
    phone.rtp_packets.clear()
    await asyncio.sleep(seconds)
    return list(phone.rtp_packets)


async def hears_music(phone: Phone, timeout: float = 5.0) -> bool:
    """Whether `phone` hears something loud (hold music, not silence) within `timeout`."""
    phone.rtp_packets.clear()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        if len(phone.rtp_packets) >= 15 and loudness(phone.rtp_packets[-15:]) > 300:
            return True
    return False


async def bridged(sw: InProcSwitch, transport: str = "udp") -> tuple[CallerDialog, Phone, Request,
                                                                       str]:
    agent = await registered_agent(sw, transport)
    caller = sw.phone("10.0.0.1")
    dialog = await call(caller, "1")
    invite, tag = await agent_answers(agent)
    await answered(dialog)
    assert sw.running.switch.calls and next(iter(sw.running.switch.calls.values())).bridge
    return dialog, agent, invite, tag


@pytest.mark.parametrize(("offered", "answered_with"),
                         [("sendonly", "recvonly"), ("inactive", "inactive")])
async def test_callers_hold_reinvite_is_answered_and_the_agent_hears_music(
        tmp_path: Path, offered: str, answered_with: str) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, _, _ = await bridged(sw)
        caller = dialog.phone
        assert loudness(await listen(agent, 0.2)) < 300  # the caller is silent: nothing loud
        hold = dialog.in_dialog("INVITE", body=caller.sdp(offered, version=2))
        reply = await caller.response(hold)
        assert reply.status == 200
        assert f"a={answered_with}".encode() in reply.body  # RFC 3264 §6.1: mirrored
        dialog.in_dialog("ACK", cseq=hold.cseq[0])
        assert await hears_music(agent), "the agent does not hear hold music"
        resume = dialog.in_dialog("INVITE", body=caller.sdp("sendrecv", version=3))
        reply = await caller.response(resume)
        assert reply.status == 200 and b"a=sendrecv" in reply.body
        dialog.in_dialog("ACK", cseq=resume.cseq[0])
        await asyncio.sleep(0.05)
        assert loudness(await listen(agent, 0.2)) < 300  # the relay again: the caller is silent
        bye = dialog.in_dialog("BYE")
        assert (await caller.response(bye)).status == 200
        agent_bye = await agent.request("BYE")
        agent.send(agent.reply(agent_bye, 200))
        cdr = await closed_cdr(sw)
        assert (cdr.disposition, cdr.hangup_by) == ("answered", "caller")
    finally:
        await sw.stop()


async def test_agents_hold_reinvite_plays_music_to_the_caller(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, invite, tag = await bridged(sw)
        caller = dialog.phone
        host, port = sw.address
        hold = agent.build("INVITE", f"sip:pbx@{host}:{port}", user="1002",
                           to=(invite.headers.get("From") or "").split(";tag=")[0].strip("<> "),
                           call_id=invite.call_id, cseq=1, from_tag=tag,
                           to_tag=(invite.headers.get("From") or "").split(";tag=")[1],
                           body=agent.sdp("sendonly", version=2))
        agent.send(hold)
        reply = await agent.response(hold)
        assert reply.status == 200 and b"a=recvonly" in reply.body
        offered = origin(invite.body)  # RFC 3264 §8: our o= line again, its version + 1
        assert origin(reply.body) == [*offered[:2], str(int(offered[2]) + 1), *offered[3:]]
        assert await hears_music(caller), "the caller does not hear hold music"
        bye = dialog.in_dialog("BYE")
        assert (await caller.response(bye)).status == 200
    finally:
        await sw.stop()


async def test_a_phone_registered_over_tcp_is_rung_over_tcp(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, invite, _ = await bridged(sw, transport="tcp")
        assert agent._stream is not None and not agent._stream.closed_by_server
        assert (invite.headers.get("Via") or "").startswith("SIP/2.0/TCP ")
        assert "transport=tcp" in (invite.headers.get("Contact") or "")
        assert invite.uri == "sip:1002@10.0.0.2:5060;transport=tcp"
        assert [d for d in sw.net.dropped if d[1][0] == "10.0.0.2"] == []  # nothing over UDP
        assert len(sw.net.connections) == 1  # the registration's connection, reused
        bye = dialog.in_dialog("BYE")
        assert (await dialog.phone.response(bye)).status == 200
        agent_bye = await agent.request("BYE")  # the agent's leg ends on the same connection
        assert (agent_bye.headers.get("Via") or "").startswith("SIP/2.0/TCP ")
        agent.send(agent.reply(agent_bye, 200))
        await settle()
        cdr = await closed_cdr(sw)
        assert cdr.legs and cdr.legs[0]["disposition"] == "answered"
    finally:
        await sw.stop()


async def test_a_udp_phone_is_rung_over_udp(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, invite, _ = await bridged(sw, transport="udp")
        assert (invite.headers.get("Via") or "").startswith("SIP/2.0/UDP ")
        assert sw.net.connections == []
        bye = dialog.in_dialog("BYE")
        assert (await dialog.phone.response(bye)).status == 200
    finally:
        await sw.stop()


async def test_a_busy_agent_gives_the_script_a_dial_event(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        agent = await registered_agent(sw)
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        invite = await agent.request("INVITE")
        agent.send(agent.reply(invite, 486, to_tag=new_token()))
        ack = await agent.request("ACK", call_id=invite.call_id)  # §17.2.1: a non-2xx is ACKed
        assert ack.cseq == (invite.cseq[0], "ACK")
        final = await caller.response(dialog.invite)
        assert final.status == 486  # the script's `reject busy` after the dial event
        cdr = await closed_cdr(sw)
        assert events(tmp_path)[:2] == ["incoming ", "dial busy"]
        assert (cdr.legs[0]["disposition"], cdr.legs[0]["sip_code"]) == ("busy", 486)
        assert cdr.disposition == "busy"
    finally:
        await sw.stop()


async def test_an_unregistered_extension_is_a_failed_dial_without_invite(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        assert (await caller.response(dialog.invite)).status == 486
        cdr = await closed_cdr(sw)
        assert events(tmp_path)[:2] == ["incoming ", "dial failed"]
        assert (cdr.legs[0]["sip_code"], cdr.legs[0]["reason"]) == (480, "not registered")
    finally:
        await sw.stop()


async def test_the_agent_hanging_up_ends_the_call_for_the_caller(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, invite, tag = await bridged(sw)
        host, port = sw.address
        from_ = invite.headers.get("From") or ""
        bye = agent.build("BYE", f"sip:pbx@{host}:{port}", user="1002",
                          to=from_.split(";tag=")[0].strip("<> "), call_id=invite.call_id,
                          cseq=2, from_tag=tag, to_tag=from_.split(";tag=")[1])
        agent.send(bye)
        assert (await agent.response(bye)).status == 200
        caller_bye = await dialog.phone.request("BYE", call_id=dialog.call_id)
        dialog.phone.send(dialog.phone.reply(caller_bye, 200))
        cdr = await closed_cdr(sw)
        assert (cdr.disposition, cdr.hangup_by) == ("answered", "callee")
        assert cdr.legs[0]["disposition"] == "answered"
    finally:
        await sw.stop()


async def test_the_callers_cancel_reaches_the_ringing_agent(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        agent = await registered_agent(sw)
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        invite = await agent.request("INVITE")
        tag = new_token()
        agent.send(agent.reply(invite, 180, to_tag=tag))
        await caller.response(dialog.invite, final=False, status=180)
        cancel = caller.cancel(dialog.invite)
        caller.send(cancel)
        assert (await caller.response(cancel)).status == 200
        assert (await caller.response(dialog.invite)).status == 487
        agent_cancel = await agent.request("CANCEL", call_id=invite.call_id)
        agent.send(agent.reply(agent_cancel, 200))
        agent.send(agent.reply(invite, 487, to_tag=tag))
        cdr = await closed_cdr(sw)
        assert (cdr.disposition, cdr.hangup_by, cdr.hangup_code) == ("abandoned", "caller", 487)
        assert cdr.legs[0]["disposition"] == "canceled"
    finally:
        await sw.stop()


def agent_request(agent: Phone, sw: InProcSwitch, invite: Request, tag: str, method: str,
                  cseq: int, headers: list[tuple[str, str]] | None = None) -> Request:
    """A request from the agent inside the dialog the switch's INVITE set up."""
    host, port = sw.address
    from_ = invite.headers.get("From") or ""
    request = agent.build(method, f"sip:pbx@{host}:{port}", user="1002",
                          to=from_.split(";tag=")[0].strip("<> "), call_id=invite.call_id,
                          cseq=cseq, from_tag=tag, to_tag=from_.split(";tag=")[1],
                          headers=headers)
    agent.send(request)
    return request


def sipfrag(notify: Request) -> str:
    return notify.body.decode().strip()


async def test_blind_transfer_by_the_agent_connects_the_caller_to_the_target(
        tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        target = sw.phone("10.0.0.3")
        await target.open_rtp()
        assert (await target.register("1003", USERS["1003"])).status == 200
        dialog, agent, invite, tag = await bridged(sw)
        refer = agent_request(agent, sw, invite, tag, "REFER", 2,
                              [("Refer-To", "<sip:1003@127.0.0.1>"),
                               ("Referred-By", "<sip:1002@127.0.0.1>")])
        assert (await agent.response(refer)).status == 202
        trying = await agent.request("NOTIFY", call_id=invite.call_id)
        assert (sipfrag(trying), trying.headers.get("Event")) == ("SIP/2.0 100 Trying", "refer")
        assert trying.headers.get("Contact") == "<sip:pbx@127.0.0.1:5060;transport=udp>"
        assert trying.headers.get("Content-Type") == "message/sipfrag;version=2.0"
        assert trying.cseq[0] > invite.cseq[0]  # a new request in the switch's dialog
        assert (trying.headers.get("Subscription-State") or "").startswith("active")
        agent.send(agent.reply(trying, 200))
        new_invite, _ = await agent_answers(target)
        done = await agent.request("NOTIFY", call_id=invite.call_id)
        assert sipfrag(done) == "SIP/2.0 200 OK"
        assert (done.headers.get("Subscription-State") or "").startswith("terminated")
        agent.send(agent.reply(done, 200))
        agent_bye = await agent.request("BYE", call_id=invite.call_id)  # the agent is released
        agent.send(agent.reply(agent_bye, 200))
        bye = dialog.in_dialog("BYE")
        assert (await dialog.phone.response(bye)).status == 200
        target_bye = await target.request("BYE", call_id=new_invite.call_id)
        target.send(target.reply(target_bye, 200))
        cdr = await closed_cdr(sw)
        assert [leg["target"] for leg in cdr.legs] == ["1002", "1003"]
        assert cdr.legs[0]["transferred_to"] == "1003"
        assert "transfer answered" in events(tmp_path)
    finally:
        await sw.stop()


async def test_a_transfer_to_nobody_brings_the_caller_back_to_the_agent(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, invite, tag = await bridged(sw)
        refer = agent_request(agent, sw, invite, tag, "REFER", 2,
                              [("Refer-To", "<sip:1003@127.0.0.1>")])
        assert (await agent.response(refer)).status == 202
        await agent.request("NOTIFY", call_id=invite.call_id)  # 100 Trying
        failed = await agent.request("NOTIFY", call_id=invite.call_id)
        assert sipfrag(failed) == "SIP/2.0 480 not registered"
        call_ = next(iter(sw.running.switch.calls.values()))
        assert call_.bridge is not None and call_.bridge.b is not None  # back with the agent
        bye = dialog.in_dialog("BYE")
        assert (await dialog.phone.response(bye)).status == 200
        agent_bye = await agent.request("BYE", call_id=invite.call_id)
        agent.send(agent.reply(agent_bye, 200))
        cdr = await closed_cdr(sw)
        assert [leg["target"] for leg in cdr.legs] == ["1002"]
        assert "transfer failed" in events(tmp_path)
    finally:
        await sw.stop()


async def test_refer_without_refer_to_is_400(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, invite, tag = await bridged(sw)
        refer = agent_request(agent, sw, invite, tag, "REFER", 2)
        assert (await agent.response(refer)).status == 400
        bye = dialog.in_dialog("BYE")
        assert (await dialog.phone.response(bye)).status == 200
    finally:
        await sw.stop()


async def test_an_agent_that_never_answers_times_out_on_timer_b(tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        agent = await registered_agent(sw)
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        invite = await agent.request("INVITE")
        await sw.advance(31.0)  # Timer A: the INVITE is resent over UDP, doubling from T1
        resent = [r for r in agent.received
                  if isinstance(r.message, Request) and r.message.call_id == invite.call_id]
        assert len(resent) >= 5
        await sw.advance(2.0)  # Timer B = 64*T1 (RFC 3261 §17.1.1.2)
        assert (await caller.response(dialog.invite)).status == 486
        cdr = await closed_cdr(sw)
        assert events(tmp_path)[:2] == ["incoming ", "dial failed"]
        assert (cdr.legs[0]["sip_code"], cdr.legs[0]["reason"]) == (408, "no response")
    finally:
        await sw.stop()
