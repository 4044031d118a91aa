"""`dial` and `transfer` with SIPp as the callees: busy (486), never answering (rings until the
switch CANCELs), declining (603), answering; a sequential hunt over them, a parallel ring whose
loser must see CANCEL, nobody answering (the `dial` event), a blind transfer by REFER from the
bridged SIPp leg, and a recorded conversation whose stereo WAV holds each side's tone.

Each SIPp callee is registered as an extension from the port it listens on (switching_helpers);
its scenario exits 0 only if the switch did exactly what the scenario expects (e.g. the CANCEL).
The caller is the raw test UAC (tests/integration/uac.py): it sends a tone and records what
arrives on one socket (the switch latches its RTP onto the sender, so SIPp cannot send a pcap and
also capture on another port).  The switch's side: `pbx cdr --json` legs and the events the route
script wrote.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.rtp.tones import tone
from tests.integration.switch_harness import SwitchProcess
from tests.integration.uac import Uac
from tests.peers.helpers import closed_cdr, poll, read_lines, write_script
from tests.peers.switching_helpers import (
    Callees,
    SippCallee,
    loud_stats,
    pcm16,
    stereo_channels,
    switch,
    tone_pcap,
    wait_rtp,
)

pytestmark = pytest.mark.peer

# One script for every route; the dial line depends on the number called.  Every event is
# logged as EVENT|RESULT|DIAL_STATUS|DIAL_CODE|DIAL_TARGET|TRANSFER_BY|TRANSFER_TO.
ROUTE_SCRIPT = r"""
printf '%s|%s|%s|%s|%s|%s|%s\n' "$PBX_EVENT" "$PBX_RESULT" "$PBX_DIAL_STATUS" "$PBX_DIAL_CODE" \
    "$PBX_DIAL_TARGET" "$PBX_TRANSFER_BY" "$PBX_TRANSFER_TO" >> "EVENTS/$PBX_CALL_ID.events"
case "$PBX_EVENT" in
incoming)
    case "$PBX_CALLED" in
    61) echo "dial 1002 1003 1004 1005 timeout=2";;
    62) echo "dial 1002 1003 1004 timeout=2";;
    63) echo "dial 1002 1003 mode=parallel timeout=8";;
    64) echo "dial 1002 timeout=10";;
    65) echo "dial 1002 timeout=10 record=yes";;
    66) echo "dial $(cat EVENTS/target) timeout=5";;      # allowed: sip:callee@127.0.0.1:PORT
    67) echo "dial $(cat EVENTS/target) timeout=5";;      # the same route, a URI it does not allow
    esac;;
dial) echo "log nobody answered"; echo "reject busy";;
esac
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    base = tmp_path_factory.mktemp("switching_sipp")
    events = base / "events"
    events.mkdir()
    script = write_script(base / "dial.sh", ROUTE_SCRIPT.replace("EVENTS", str(events)),
                          "/bin/sh")
    routes = f"""
        [[routes]]
        match = "^6[67]$"
        script = "{script}"
        public = true
        dial_allow = ['^sip:callee@127\\.0\\.0\\.1:[0-9]+$']

        [[routes]]
        match = "^6[0-9]$"
        script = "{script}"
        public = true
        """
    with switch(base / "switch", routes) as sw:
        yield sw, events


def script_events(events: Path, call_id: str) -> list[list[str]]:
    """The events the route script logged for a call, once its hangup event is there."""
    path = events / f"{call_id}.events"
    poll(lambda: any(x.startswith("hangup|") for x in read_lines(path)), timeout=5)
    return [line.split("|") for line in read_lines(path)]


def legs(cdr: dict) -> list[tuple[str, str, int | None]]:  # type: ignore[type-arg]
    return [(leg["target"], leg["disposition"], leg["sip_code"]) for leg in cdr["legs"]]


def busy(sw: SwitchProcess, ext: str, work: Path) -> SippCallee:
    return SippCallee("switching_uas_busy.xml", sw.port, ext, work / f"busy{ext}")


def decline(sw: SwitchProcess, ext: str, work: Path) -> SippCallee:
    return SippCallee("switching_uas_decline.xml", sw.port, ext, work / f"decline{ext}")


def ringing(sw: SwitchProcess, ext: str, work: Path) -> SippCallee:
    return SippCallee("switching_uas_ring.xml", sw.port, ext, work / f"ring{ext}")


def answering(sw: SwitchProcess, ext: str, work: Path, echo: bool = False) -> SippCallee:
    return SippCallee("switching_uas_answer.xml", sw.port, ext, work / f"answer{ext}", echo=echo)


def assert_ran(*peers: SippCallee, timeout: float = 15) -> None:
    for peer in peers:
        assert peer.wait(timeout) == 0, peer.logs()


def test_sequential_hunt_reaches_the_one_that_answers(env: tuple[SwitchProcess, Path],
                                                      tmp_path: Path) -> None:
    sw, events = env
    with Callees() as c:
        peers = [c.start(busy(sw, "1002", tmp_path)), c.start(ringing(sw, "1003", tmp_path)),
                 c.start(decline(sw, "1004", tmp_path)), c.start(answering(sw, "1005", tmp_path))]
        caller = Uac(sw.port)
        try:
            resp = caller.call("61", timeout=20)
            assert resp is not None and resp.status == 200, resp
            caller.rtp.drain(0.5)
            bye = caller.bye()
            assert bye is not None and bye.status == 200
        finally:
            caller.close()
        assert_ran(*peers)  # the 1003 scenario passes only if it got CANCEL, 1005 only a BYE
    cdr = closed_cdr(sw, caller.call_id)
    assert legs(cdr) == [("1002", "busy", 486), ("1003", "no answer", 487),
                         ("1004", "declined", 603), ("1005", "answered", 200)], cdr["legs"]
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "caller", cdr
    ev = script_events(events, cdr["call_id"])
    assert [e[0] for e in ev] == ["incoming", "hangup"], ev  # no `dial` event: someone answered


def test_nobody_answers_gives_the_dial_event(env: tuple[SwitchProcess, Path],
                                             tmp_path: Path) -> None:
    sw, events = env
    with Callees() as c:
        peers = [c.start(busy(sw, "1002", tmp_path)), c.start(ringing(sw, "1003", tmp_path)),
                 c.start(decline(sw, "1004", tmp_path))]
        caller = Uac(sw.port)
        try:
            resp = caller.call("62", timeout=20)
            assert resp is not None and resp.status == 486, resp  # the script's `reject busy`
        finally:
            caller.close()
        assert_ran(*peers)
    cdr = closed_cdr(sw, caller.call_id)
    assert legs(cdr) == [("1002", "busy", 486), ("1003", "no answer", 487),
                         ("1004", "declined", 603)], cdr["legs"]
    ev = script_events(events, cdr["call_id"])
    dial = [e for e in ev if e[0] == "dial"]
    # the last target tried (1004) declined: that is the hunt's outcome
    assert [e[:5] for e in dial] == [["dial", "declined", "declined", "603", "1004"]], ev


def test_parallel_ring_cancels_the_loser(env: tuple[SwitchProcess, Path],
                                         tmp_path: Path) -> None:
    sw, events = env
    with Callees() as c:
        loser = c.start(ringing(sw, "1002", tmp_path))
        winner = c.start(answering(sw, "1003", tmp_path))
        caller = Uac(sw.port)
        try:
            resp = caller.call("63", timeout=15)
            assert resp is not None and resp.status == 200, resp
            # the loser's scenario ends (rc 0) only after CANCEL, 200, 487 and the ACK
            assert loser.wait(10) == 0, loser.logs()
            bye = caller.bye()
            assert bye is not None and bye.status == 200
        finally:
            caller.close()
        assert_ran(winner)
    assert "CANCEL sip:" in loser.messages()
    assert "CANCEL sip:" not in winner.messages()
    cdr = closed_cdr(sw, caller.call_id)
    assert sorted(legs(cdr)) == [("1002", "canceled", 487), ("1003", "answered", 200)], cdr["legs"]
    assert [e[0] for e in script_events(events, cdr["call_id"])] == ["incoming", "hangup"]


def test_refer_from_the_bridged_sipp_leg(env: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    sw, events = env
    with Callees() as c:
        agent = c.start(SippCallee("switching_uas_refer.xml", sw.port, "1002", tmp_path / "agent",
                                   keys={"ext": "1002", "refer_to": "1003"}))
        expert = c.start(answering(sw, "1003", tmp_path, echo=True))
        caller = Uac(sw.port)
        try:
            resp = caller.call("64", timeout=15)
            assert resp is not None and resp.status == 200, resp
            # REFER, 202, NOTIFY 100, NOTIFY 200, and the agent leaves: its scenario ends
            assert agent.wait(15) == 0, agent.logs()
            # The caller now talks to 1003, whose SIPp echoes RTP: the caller's tone comes back.
            wait_rtp(caller.rtp)
            caller.rtp.packets.clear()
            caller.rtp.send_audio(tone(700, 1500, amplitude=8000))  # not ringback's 425 Hz
            caller.rtp.drain(0.5)
            loud, hz = loud_stats(pcm16(caller.rtp.audio()))
            bye = caller.bye()
            assert bye is not None and bye.status == 200
        finally:
            caller.close()
        assert_ran(expert)
    assert loud >= 30 and 650 < hz < 750, (loud, hz, "the caller is not connected to 1003")
    refer = agent.messages()
    assert "SIP/2.0 202" in refer and "message/sipfrag" in refer
    cdr = closed_cdr(sw, caller.call_id)
    got = [(leg["target"], leg["disposition"], leg.get("transferred_to")) for leg in cdr["legs"]]
    assert got == [("1002", "answered", "1003"), ("1003", "answered", None)], cdr["legs"]
    ev = script_events(events, cdr["call_id"])
    transfer = [e for e in ev if e[0] == "transfer"]
    assert [(e[1], e[5], e[6]) for e in transfer] == [("answered", "1002", "1003")], ev


def test_recorded_conversation_has_each_side_on_its_channel(env: tuple[SwitchProcess, Path],
                                                             tmp_path: Path) -> None:
    sw, _ = env
    work = tmp_path / "callee"
    work.mkdir()
    assert tone_pcap(work / "tone1000.pcap", 1000, 2.5) > 100
    with Callees() as c:
        peers = [c.start(SippCallee("switching_uas_tone.xml", sw.port, "1002", work))]
        caller = Uac(sw.port)
        try:
            resp = caller.call("65", timeout=15)
            assert resp is not None and resp.status == 200, resp
            wait_rtp(caller.rtp)
            caller.rtp.send_audio(tone(440, 2000, amplitude=8000))
            caller.rtp.drain(0.5)
            bye = caller.bye()
            assert bye is not None and bye.status == 200
        finally:
            caller.close()
        assert_ran(*peers)
    heard_loud, heard_hz = loud_stats(pcm16(caller.rtp.audio()))
    cdr = closed_cdr(sw, caller.call_id)
    stereo = [r for r in cdr["recordings"] if r.endswith("-stereo.wav")]
    assert len(stereo) == 1, cdr
    path = sw.dir / "var" / "recordings" / stereo[0]
    poll(path.exists, timeout=5)
    left, right = stereo_channels(path)
    left_loud, left_hz = loud_stats(left)
    right_loud, right_hz = loud_stats(right)
    assert left_loud >= 50 and 400 < left_hz < 480, ("left is the caller's 440 Hz", left_loud,
                                                      left_hz)
    assert right_loud >= 50 and 940 < right_hz < 1060, ("right is the callee's 1 kHz",
                                                         right_loud, right_hz)
    # and the caller heard the callee live, through the bridge
    assert heard_loud >= 30 and 940 < heard_hz < 1060, (heard_loud, heard_hz)


def test_refer_to_a_busy_target_brings_the_caller_back(env: tuple[SwitchProcess, Path],
                                                        tmp_path: Path) -> None:
    sw, events = env
    with Callees() as c:
        agent = c.start(SippCallee("switching_uas_refer_busy.xml", sw.port, "1002",
                                   tmp_path / "agent", keys={"ext": "1002", "refer_to": "1003"},
                                   echo=True))
        target = c.start(busy(sw, "1003", tmp_path))
        caller = Uac(sw.port)
        try:
            resp = caller.call("64", timeout=15)
            assert resp is not None and resp.status == 200, resp
            # REFER at +1 s, the target's 486 at about +1.4 s; the agent (echoing RTP) leaves at
            # about +4.4 s: between the two the caller must hear itself through the agent
            wait_rtp(caller.rtp)
            caller.rtp.drain(2.0)
            caller.rtp.packets.clear()
            caller.rtp.send_audio(tone(700, 1000, amplitude=8000))  # not ringback's 425 Hz
            caller.rtp.drain(0.3)
            loud, hz = loud_stats(pcm16(caller.rtp.audio()))
            assert caller.wait_bye(10) is not None, "the agent's BYE did not end the call"
        finally:
            caller.close()
        assert_ran(agent, target)
    assert loud >= 20 and 650 < hz < 750, (loud, hz, "the caller is not back with the agent")
    cdr = closed_cdr(sw, caller.call_id)
    got = sorted((leg["target"], leg["disposition"], leg["sip_code"], leg.get("transferred_to"))
                 for leg in cdr["legs"])
    assert got == [("1002", "answered", 200, None), ("1003", "busy", 486, None)], cdr["legs"]
    assert cdr["hangup_by"] == "callee", cdr
    ev = script_events(events, cdr["call_id"])
    transfer = [e for e in ev if e[0] == "transfer"]
    assert [(e[1], e[5], e[6]) for e in transfer] == [("busy", "1002", "1003")], ev
    assert ev[-1][:2] == ["hangup", "callee"], ev


def test_dial_a_sip_uri_the_route_allows(env: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    """dial_allow lets the route dial a `sip:` URI directly: an unregistered SIPp callee."""
    sw, events = env
    with Callees() as c:
        callee = c.start(SippCallee("switching_uas_answer.xml", sw.port, None, tmp_path / "uri"))
        (events / "target").write_text(callee.uri)
        caller = Uac(sw.port)
        try:
            resp = caller.call("66", timeout=15)
            assert resp is not None and resp.status == 200, resp
            bye = caller.bye()
            assert bye is not None and bye.status == 200
        finally:
            caller.close()
        assert callee.wait(10) == 0, callee.logs()
    assert f"INVITE {callee.uri} SIP/2.0" in callee.messages()
    cdr = closed_cdr(sw, caller.call_id)
    assert legs(cdr) == [(callee.uri, "answered", 200)], cdr["legs"]


def test_dial_a_sip_uri_the_route_does_not_allow(env: tuple[SwitchProcess, Path],
                                                 tmp_path: Path) -> None:
    """A URI outside dial_allow (another user part) is never dialled: `dial` event, failed."""
    sw, events = env
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as trap:
        trap.bind(("127.0.0.1", 0))
        trap.settimeout(1.0)
        (events / "target").write_text(f"sip:premium@127.0.0.1:{trap.getsockname()[1]}")
        caller = Uac(sw.port)
        try:
            resp = caller.call("67", timeout=10)
            assert resp is not None and resp.status == 486, resp  # the script's `reject busy`
        finally:
            caller.close()
        with pytest.raises(TimeoutError):
            trap.recv(65535)  # nothing was sent to the URI
    cdr = closed_cdr(sw, caller.call_id)
    assert [(leg["disposition"], leg.get("reason")) for leg in cdr["legs"]] == [
        ("failed", "not allowed")], cdr["legs"]
    dial = [e for e in script_events(events, cdr["call_id"]) if e[0] == "dial"]
    assert [e[1:3] for e in dial] == [["failed", "failed"]], dial
