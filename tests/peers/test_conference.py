"""Conference rooms against real peers: five test UACs in one room, each sending its own tone,
each hearing the four others' frequencies and never its own; a muted member heard by nobody
until `pbx conference unmute`; `pbx conferences --json`; `pbx conference kick` hangs the member
up and its `hangup` event says `kicked`; a full room gives the `conference` event; a supervisor
listening to a bridged call (heard by nobody), then coaching (heard by the agent only); and an
agent keying `*3EXT#` to bring a consultant in, who gets the same screen pop.

The parties are the raw test UAC (tests/integration/uac.py) on a real `pbx run`; every party
sends one PCMU packet per 20 ms from a single loop, so all of them talk at once.  What a party
hears is measured by the Goertzel magnitude at each party's frequency (the mix of four tones
defeats a zero-crossing estimate), relative to a full-scale tone of the sent amplitude.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.rtp.g711 import ulaw_encode
from pbxcore.rtp.packet import RtpPacket
from pbxcore.rtp.tones import tone
from tests.integration.switch_harness import SwitchProcess
from tests.integration.uac import Uac
from tests.integration.uas import Phone
from tests.peers.helpers import poll, read_lines, write_script
from tests.peers.switching_helpers import USERS, pcm16, switch

pytestmark = pytest.mark.peer

AMPLITUDE = 4000
FREQS = {"1001": 450.0, "1002": 700.0, "1003": 950.0, "1004": 1250.0, "1005": 1550.0}
MUTED = ("1006", 1900.0)

SCRIPT = r"""
printf '%s|%s|%s|%s|%s\n' "$PBX_EVENT" "$PBX_RESULT" "$PBX_CALLER" "$PBX_CONFERENCE" \
    "$PBX_CONFERENCE_RESULT" >> "EVENTS"
case "$PBX_EVENT" in
incoming)
    case "$PBX_CALLED" in
    70) echo "conference standup";;
    71) echo "conference standup muted=yes";;
    72) echo "conference standup max=1";;
    74) echo "dial 1002 timeout=10";;
    75) echo "set crm=4711"; echo "dial 1002 timeout=10";;
    76) echo "conference board pin=42";;
    77) echo "conference town moderator=yes";;
    78) echo "conference town end=yes";;
    79) echo "conference town";;
    esac;;
conference) echo "hangup";;
esac
"""


def magnitude(samples: list[int], hz: float) -> float:
    """|DFT at hz| relative to a sine of AMPLITUDE (1.0: that tone is there at full level)."""
    w = 2 * math.pi * hz / 8000
    re = sum(s * math.cos(w * i) for i, s in enumerate(samples))
    im = sum(s * math.sin(w * i) for i, s in enumerate(samples))
    return math.hypot(re, im) / (len(samples) * AMPLITUDE / 2)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    base = tmp_path_factory.mktemp("conference")
    events = base / "events.log"
    script = write_script(base / "conf.sh", SCRIPT.replace("EVENTS", str(events)), "/bin/sh")
    routes = f"""
        [[routes]]
        match = "^7[0-9]$"
        script = "{script}"
        public = true
        """
    with switch(base / "switch", routes) as sw:
        yield sw, events


def talk(parties: dict[str, Uac], payloads: dict[str, bytes], seconds: float) -> None:
    """Every party in `payloads` sends its audio at once, one packet per 20 ms; all drain."""
    start = time.monotonic()
    for n in range(int(seconds * 50)):
        for user, uac in parties.items():
            data = payloads.get(user)
            if data is not None:
                chunk = data[(n * 160) % len(data):][:160]
                pkt = RtpPacket(0, uac.rtp.seq, uac.rtp.ts, uac.rtp.ssrc, chunk)
                assert uac.rtp.remote is not None
                uac.rtp.sock.sendto(pkt.to_bytes(), uac.rtp.remote)
                uac.rtp.seq = (uac.rtp.seq + 1) & 0xFFFF
                uac.rtp.ts += 160
            uac.rtp.drain()
        time.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))


def heard(uac: Uac, skip: float = 0.3) -> list[int]:
    """The audio received so far minus its first `skip` seconds (pipeline fill)."""
    return pcm16(uac.rtp.audio())[int(skip * 8000):]


def pbx_json(sw: SwitchProcess, *args: str) -> dict[str, object]:
    done = sw.pbx(*args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_five_party_room(env: tuple[SwitchProcess, Path]) -> None:
    sw, events = env
    parties = {user: Uac(sw.port, user=user) for user in [*FREQS, MUTED[0]]}
    try:
        for user, uac in parties.items():
            resp = uac.call("71" if user == MUTED[0] else "70")
            assert resp is not None and resp.status == 200, user
            uac.rtp.drain(0.05)
        for uac in parties.values():
            uac.rtp.drain(0.1)
            assert uac.rtp.remote is not None, "the room sends every member RTP"
        talk(parties, {}, 0.4)  # the join chimes are over
        rooms = pbx_json(sw, "conferences")["conferences"]
        assert isinstance(rooms, list) and [r["room"] for r in rooms] == ["standup"]
        members = rooms[0]["members"]
        assert [m["caller"] for m in members] == [*FREQS, MUTED[0]]
        assert [m["muted"] for m in members] == [False] * 5 + [True]

        # Everybody talks at once, the muted member too.
        tones = {u: pcmu(tone(f, 1000, amplitude=AMPLITUDE)) for u, f in FREQS.items()}
        tones[MUTED[0]] = pcmu(tone(MUTED[1], 1000, amplitude=AMPLITUDE))
        for uac in parties.values():
            uac.rtp.drain()  # audio queued in the socket from before is not measured
            uac.rtp.packets.clear()
        talk(parties, tones, 1.6)
        for user, uac in parties.items():
            samples = heard(uac)
            assert len(samples) > 8000, f"{user} received {len(samples)} samples"
            levels = {u: magnitude(samples, f) for u, f in FREQS.items()}
            muted_level = magnitude(samples, MUTED[1])
            for other, level in levels.items():
                if other == user:
                    assert level < 0.05, f"{user} hears itself: {levels}"
                else:
                    assert level > 0.5, f"{user} does not hear {other}: {levels}"
            assert muted_level < 0.05, f"{user} hears the muted member: {muted_level:.3f}"

        # Unmuted by the operator, the muted member is heard by the others.
        assert pbx_json(sw, "conference", "unmute", "standup", MUTED[0])["muted"] is False
        for uac in parties.values():
            uac.rtp.drain()  # audio queued in the socket from before is not measured
            uac.rtp.packets.clear()
        talk(parties, {MUTED[0]: tones[MUTED[0]]}, 1.6)
        for user, uac in parties.items():
            level = magnitude(heard(uac), MUTED[1])
            if user == MUTED[0]:
                assert level < 0.05, level
            else:
                assert level > 0.5, f"{user} does not hear the unmuted member: {level:.3f}"

        # Kicked: the switch hangs the member up, its hangup event says so.
        kicked = parties.pop("1005")
        result = pbx_json(sw, "conference", "kick", "standup", "1005")
        assert result["caller"] == "1005" and result["op"] == "kick"
        assert kicked.wait_bye(5) is not None, "no BYE for the kicked member"
        kicked.close()
        line = poll(lambda: [x for x in read_lines(events)
                             if x.startswith("hangup|") and "|1005|" in x], timeout=10)
        assert line == ["hangup|switch|1005|standup|kicked"], read_lines(events)
        members = pbx_json(sw, "conferences")["conferences"][0]["members"]  # type: ignore[index]
        assert "1005" not in [m["caller"] for m in members]
    finally:
        for uac in parties.values():
            uac.bye()
            uac.close()
    assert poll(lambda: not pbx_json(sw, "conferences")["conferences"], timeout=10), \
        "the room outlived its members"
    lines = read_lines(events)
    assert sum(1 for x in lines if x.startswith("hangup|caller|") and x.endswith(
        "|standup|left")) == 5, lines


def test_full_room_gives_the_conference_event(env: tuple[SwitchProcess, Path]) -> None:
    sw, events = env
    first, second = Uac(sw.port, user="1007"), Uac(sw.port, user="1008")
    try:
        resp = first.call("72")
        assert resp is not None and resp.status == 200
        resp = second.call("72")  # max=1: the room already has one member
        assert resp is not None and resp.status == 200  # answered: the conference is media
        assert second.wait_bye(10) is not None, "the script's hangup after full"
        lines = poll(lambda: [x for x in read_lines(events) if "|1008|" in x
                              and x.startswith("conference|")], timeout=10)
        assert lines == ["conference|full|1008|standup|full"], read_lines(events)
    finally:
        first.bye()
        for uac in (first, second):
            uac.close()


def pcmu(pcm: bytes) -> bytes:
    """PCM as the PCMU payload bytes the parties send."""
    return ulaw_encode(pcm)


def phone(sw: SwitchProcess, ext: str, hz: float) -> Phone:
    """A registered phone that answers and sends a tone of `hz` while answered."""
    p = Phone(sw.port, ext, USERS[ext], "answer", send_tone=int(hz))
    assert p.register() == 200
    p.sock.settimeout(0.005)  # a loop pass (and so a tone frame) every 20 ms, not every 50
    p.start()
    return p


def levels(samples: list[int], freqs: dict[str, float]) -> dict[str, float]:
    return {name: round(magnitude(samples, hz) * AMPLITUDE / 8000, 3)
            for name, hz in freqs.items()}  # the phones send at 8000, the caller at 4000


def test_supervisor_listens_then_coaches(env: tuple[SwitchProcess, Path]) -> None:
    sw, _ = env
    freqs = {"caller": 450.0, "agent": 700.0, "listener": 1900.0, "coach": 1300.0}
    agent, listener, coach = phone(sw, "1002", 700), phone(sw, "1003", 1900), \
        phone(sw, "1004", 1300)
    caller = Uac(sw.port, user="1001")
    caller_tone = {"1001": pcmu(tone(450, 1000, amplitude=AMPLITUDE * 2))}
    try:
        resp = caller.call("74")
        assert resp is not None and resp.status == 200
        caller.rtp.drain(0.3)
        calls = poll(lambda: [c for c in pbx_json(sw, "calls")["calls"]  # type: ignore[union-attr]
                              if c["caller"] == "1001" and c["state"] == "bridged"],
                     timeout=10)
        assert calls, pbx_json(sw, "calls")
        call_id = calls[0]["call_id"]
        on = pbx_json(sw, "spy", call_id, "--listen", "1003")
        assert on["mode"] == "listen" and on["extension"] == "1003"
        caller.rtp.drain()  # audio queued in the socket from before is not measured
        for p in (caller.rtp, agent.rtp, listener.rtp):
            p.packets.clear()
        talk({"1001": caller}, caller_tone, 1.6)
        by_caller = levels(heard(caller), freqs)
        by_agent = levels(heard_phone(agent), freqs)
        by_listener = levels(heard_phone(listener), freqs)
        assert by_caller["agent"] > 0.3 and by_caller["listener"] < 0.05, by_caller
        assert by_agent["caller"] > 0.3 and by_agent["listener"] < 0.05, by_agent
        assert by_listener["caller"] > 0.3 and by_listener["agent"] > 0.3, by_listener
        assert by_listener["listener"] < 0.05, by_listener

        # The listener hangs up: caller and agent go on, relayed; then a coach whispers.
        listener.hangup()
        assert poll(lambda: listener.seen.byes_received or listener.dialog is None
                    or not listener.seen.answered, timeout=5)
        on = pbx_json(sw, "spy", call_id, "--whisper", "1004")
        assert on["mode"] == "whisper"
        caller.rtp.drain()  # audio queued in the socket from before is not measured
        for p in (caller.rtp, agent.rtp, coach.rtp):
            p.packets.clear()
        talk({"1001": caller}, caller_tone, 1.6)
        by_caller = levels(heard(caller), freqs)
        by_agent = levels(heard_phone(agent), freqs)
        by_coach = levels(heard_phone(coach), freqs)
        assert by_caller["agent"] > 0.3 and by_caller["coach"] < 0.05, by_caller
        assert by_agent["caller"] > 0.3 and by_agent["coach"] > 0.3, by_agent
        assert by_coach["caller"] > 0.3 and by_coach["agent"] > 0.3, by_coach
        assert by_coach["coach"] < 0.05, by_coach
        caller.bye()
        assert poll(lambda: coach.seen.byes_received, timeout=10), "the coach was not hung up"
    finally:
        caller.close()
        for p in (agent, listener, coach):
            p.close()


def heard_phone(p: Phone, skip: float = 0.3) -> list[int]:
    return pcm16(p.rtp.audio())[int(skip * 8000):]


def test_agent_brings_in_a_consultant_by_feature_code(env: tuple[SwitchProcess, Path]) -> None:
    sw, _ = env
    freqs = {"caller": 450.0, "agent": 700.0, "consultant": 1300.0, "listener": 1900.0}
    agent, consultant = phone(sw, "1002", 700), phone(sw, "1005", 1300)
    listener = phone(sw, "1003", 1900)
    caller = Uac(sw.port, user="1001")
    caller_tone = {"1001": pcmu(tone(450, 1000, amplitude=AMPLITUDE * 2))}
    try:
        resp = caller.call("75")
        assert resp is not None and resp.status == 200
        caller.rtp.drain(0.3)
        assert poll(lambda: agent.seen.answered and agent.rtp.remote, timeout=10)
        agent.rtp.send_dtmf("*31005#")  # the feature code, keyed on the agent's phone
        assert poll(lambda: consultant.seen.answered, timeout=10), "the consultant never rang"
        invite = consultant.seen.invites[0]
        assert "[consult]" in (invite.headers.get("From") or "")
        assert invite.headers.get("X-Pbx-Var-crm") == "4711"  # the same client data
        caller.rtp.drain()  # audio queued in the socket from before is not measured
        for p in (caller.rtp, agent.rtp, consultant.rtp):
            p.packets.clear()
        talk({"1001": caller}, caller_tone, 1.6)
        by_caller = levels(heard(caller), freqs)
        by_agent = levels(heard_phone(agent), freqs)
        by_consultant = levels(heard_phone(consultant), freqs)
        assert by_caller["agent"] > 0.3 and by_caller["consultant"] > 0.3, by_caller
        assert by_caller["caller"] < 0.05, by_caller
        assert by_agent["caller"] > 0.3 and by_agent["consultant"] > 0.3, by_agent
        assert by_consultant["caller"] > 0.3 and by_consultant["agent"] > 0.3, by_consultant
        assert by_consultant["consultant"] < 0.05, by_consultant

        # A supervisor listens in too (the same room); the consultant hangs up: the
        # supervisor still hears caller and agent; then the supervisor leaves as well.
        calls = [c for c in pbx_json(sw, "calls")["calls"]  # type: ignore[union-attr]
                 if c["caller"] == "1001"]
        assert pbx_json(sw, "spy", calls[0]["call_id"], "--listen", "1003")["mode"] == "listen"
        consultant.hangup()
        caller.rtp.drain(0.3)  # what queued in the socket meanwhile is not measured
        for p in (caller.rtp, listener.rtp):
            p.packets.clear()
        talk({"1001": caller}, caller_tone, 1.0)
        by_caller = levels(heard(caller), freqs)
        by_listener = levels(heard_phone(listener), freqs)
        assert by_caller["agent"] > 0.3 and by_caller["consultant"] < 0.05, by_caller
        assert by_listener["caller"] > 0.3 and by_listener["agent"] > 0.3, by_listener
        listener.hangup()
        caller.rtp.drain(0.3)  # what queued in the socket meanwhile is not measured
        caller.rtp.packets.clear()
        talk({"1001": caller}, caller_tone, 1.0)
        assert levels(heard(caller), freqs)["agent"] > 0.3  # back on the relay, nobody dropped
        assert agent.seen.byes_received == 0 and agent.seen.answered
    finally:
        caller.bye()
        caller.close()
        for p in (agent, consultant, listener):
            p.close()


def test_pin_three_wrong_tries_then_right(env: tuple[SwitchProcess, Path]) -> None:
    sw, events = env
    wrong, right = Uac(sw.port, user="1007"), Uac(sw.port, user="1008")
    try:
        resp = wrong.call("76")
        assert resp is not None and resp.status == 200
        for _ in range(3):
            wrong.rtp.drain(0.5)  # the beep, then the keys
            wrong.rtp.send_dtmf("99")
        assert wrong.wait_bye(10) is not None, "the script's hangup after bad_pin"
        lines = poll(lambda: [x for x in read_lines(events) if x.startswith("conference|")
                              and "|1007|" in x], timeout=10)
        assert lines == ["conference|bad_pin|1007|board|bad_pin"], read_lines(events)

        resp = right.call("76")
        assert resp is not None and resp.status == 200
        right.rtp.drain(0.5)
        right.rtp.send_dtmf("42")
        rooms = poll(lambda: pbx_json(sw, "conferences")["conferences"], timeout=10)
        assert [m["caller"] for m in rooms[0]["members"]] == ["1008"], rooms
    finally:
        right.bye()
        for uac in (wrong, right):
            uac.close()


def test_last_moderator_leaving_ends_the_room_for_end_members(
        env: tuple[SwitchProcess, Path]) -> None:
    sw, events = env
    moderator, follower, stayer = (Uac(sw.port, user=u) for u in ("1007", "1008", "1009"))
    try:
        for uac, number in ((moderator, "77"), (follower, "78"), (stayer, "79")):
            resp = uac.call(number)
            assert resp is not None and resp.status == 200
        members = poll(lambda: (pbx_json(sw, "conferences")["conferences"] or [{}])[0]
                       .get("members"), timeout=5)  # type: ignore[union-attr]
        assert [m["moderator"] for m in members] == [True, False, False], members
        moderator.bye()
        assert follower.wait_bye(5) is not None, "end=yes: hung up with the last moderator"
        lines = poll(lambda: [x for x in read_lines(events) if x.startswith("hangup|")
                              and "|1008|" in x and "|town|" in x], timeout=10)
        assert lines == ["hangup|switch|1008|town|ended"], read_lines(events)
        rooms = pbx_json(sw, "conferences")["conferences"]
        assert [m["caller"] for m in rooms[0]["members"]] == ["1009"]  # type: ignore[index]
    finally:
        stayer.bye()
        for uac in (moderator, follower, stayer):
            uac.close()

