"""`dial` in process: the switch as B2BUA between a caller and a registered phone.  A hold
re-INVITE from either side (RFC 3264 §8.4) is answered and the other side hears hold music (real
RTP on 127.0.0.1); a phone registered over TCP is rung over that connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pbxcore.sip.message import Request
from pbxcore.testing.inproc import InProcSwitch, Phone, new_token, settle
from tests.unit.call.inproc_site import USERS, CallerDialog, answered, call, closed_cdr, start

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


async def rtp_arrives(phone: Phone, count: int = 10, timeout: float = 3.0) -> bool:
    """Whether `count` more RTP packets reach `phone` within `timeout` real seconds."""
    start = len(phone.rtp_packets)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if len(phone.rtp_packets) - start >= count:
            return True
        await asyncio.sleep(0.02)
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


async def test_callers_hold_reinvite_is_answered_and_the_agent_hears_music(
        tmp_path: Path) -> None:
    sw = await start(tmp_path, DIAL, {"1": "d.sh"})
    try:
        dialog, agent, _, _ = await bridged(sw)
        caller = dialog.phone
        await asyncio.sleep(0.2)
        agent.rtp_packets.clear()
        assert not await rtp_arrives(agent, 1, timeout=0.3)  # the caller is silent: nothing relayed
        hold = dialog.in_dialog("INVITE", body=caller.sdp("sendonly", version=2))
        reply = await caller.response(hold)
        assert reply.status == 200
        assert b"a=recvonly" in reply.body  # RFC 3264 §6.1: sendonly is answered recvonly
        dialog.in_dialog("ACK", cseq=hold.cseq[0])
        assert await rtp_arrives(agent), "the agent does not hear hold music"
        resume = dialog.in_dialog("INVITE", body=caller.sdp("sendrecv", version=3))
        reply = await caller.response(resume)
        assert reply.status == 200 and b"a=sendrecv" in reply.body
        dialog.in_dialog("ACK", cseq=resume.cseq[0])
        await asyncio.sleep(0.2)
        agent.rtp_packets.clear()
        assert not await rtp_arrives(agent, 5, timeout=0.5)  # the relay again: the caller is silent
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
        caller.rtp_packets.clear()
        assert await rtp_arrives(caller), "the caller does not hear hold music"
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
