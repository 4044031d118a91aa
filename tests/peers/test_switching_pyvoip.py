"""IVR → `dial` an agent, with real peers on both sides: a SIPp caller reaches a route whose
script answers, plays a short prompt and dials extension 1002, where a pyVoIP 1.6.8 phone is
registered and auto-answers.  Audio is checked by content through the bridge, both ways: the
agent's 1 kHz tone reaches the caller's media socket, and the 440 Hz tone SIPp plays (a PCMU pcap)
reaches the agent's read_audio.  The CDR has one answered leg to 1002; the script saw
`incoming` and `hangup` (result caller).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.rtp.g711 import ulaw_decode
from tests.integration.switch_harness import SwitchProcess
from tests.integration.uac import Uac
from tests.peers.helpers import closed_cdr, poll, read_lines, write_script
from tests.peers.switching_helpers import (
    Agent,
    Callees,
    SippCallee,
    frame_hz,
    free_block,
    near,
    pcm16,
    switch,
    tone_pcap,
)
from tests.sipp.sipp_peer import RtpSink, run_sipp

pytestmark = pytest.mark.peer

ROUTE_SCRIPT = r"""
printf '%s|%s|%s\n' "$PBX_EVENT" "$PBX_RESULT" "$PBX_DIAL_STATUS" >> "EVENTS/$PBX_CALL_ID.events"
case "$PBX_EVENT" in
incoming)
    case "$PBX_CALLED" in
    70) echo answer; echo "play beep"; echo "dial 1002 timeout=10";;
    71) echo "dial 1002 1003 mode=parallel timeout=8";;
    esac;;
dial) echo "play sorry";;
esac
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    base = tmp_path_factory.mktemp("switching_pyvoip")
    events = base / "events"
    events.mkdir()
    script = write_script(base / "ivr.sh", ROUTE_SCRIPT.replace("EVENTS", str(events)),
                          "/bin/sh")
    routes = f"""
        [[routes]]
        match = "^7[01]$"
        script = "{script}"
        public = true
        """
    with switch(base / "switch", routes) as sw:
        yield sw, events


def test_ivr_dials_a_pyvoip_agent_audio_both_ways(env: tuple[SwitchProcess, Path],
                                                  tmp_path: Path) -> None:
    sw, events = env
    work = tmp_path / "sipp"
    work.mkdir()
    assert tone_pcap(work / "tone440.pcap", 440, 3.0) > 100
    agent = Agent(sw.port, "1002", tmp_path / "agent", tone_hz=1000, tone_seconds=10)
    try:
        assert agent.wait_registered(), agent.log_text()
        with RtpSink() as sink:
            res = run_sipp("switching_caller_tone.xml", sw.port, work, service="70",
                           keys={"sink_port": str(sink.port)}, timeout=25,
                           media_port=free_block(4))  # SIPp binds 4 ports from -mp on
        poll(lambda: [c for c in agent.report().get("calls", []) if "hz" in c], timeout=5)
    finally:
        report = agent.finish()
    assert res.rc == 0, res.logs()
    assert report.get("registered"), (report, agent.log_text())
    assert len(report["calls"]) == 1, (report, agent.log_text())
    call = report["calls"][0]
    assert call["answered"] and call.get("error") is None, call

    # caller → agent: the 440 Hz pcap SIPp played, through the switch, in pyVoIP's read_audio
    assert near(call["hz"], 440) >= 50, ("the agent did not hear the caller's 440 Hz", call["hz"])
    # agent → caller: the agent's 1 kHz tone (write_audio) at the caller's media address
    heard = frame_hz(pcm16(ulaw_decode(b"".join(p.payload for p in sink.pcmu()))))
    assert near(heard, 1000) >= 50, ("the caller did not hear the agent's 1 kHz", heard)

    cdr = closed_cdr(sw, res.call_id)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "caller", cdr
    assert [(leg["target"], leg["disposition"], leg["sip_code"]) for leg in cdr["legs"]] == [
        ("1002", "answered", 200)], cdr["legs"]
    path = events / f"{cdr['call_id']}.events"
    poll(lambda: any(x.startswith("hangup|") for x in read_lines(path)), timeout=5)
    assert [line.split("|")[:2] for line in read_lines(path)] == [
        ["incoming", ""], ["hangup", "caller"]]


def test_parallel_ring_pyvoip_loser_answers_after_cancel(env: tuple[SwitchProcess, Path],
                                                         tmp_path: Path) -> None:
    """pyVoIP answers ~1 s after the INVITE, so the SIPp callee (answers at 0.3 s) wins and the
    agent gets CANCEL.  pyVoIP replies 200 to the CANCEL, never 487, and still sends 200 OK to
    the INVITE (docs/peers.md 1c row 11): the switch must ACK that 2xx and end it with BYE
    (RFC 3261 section 9.1), so the agent's call ends at once instead of hanging on."""
    sw, _ = env
    agent = Agent(sw.port, "1002", tmp_path / "agent", tone_hz=1000, tone_seconds=3)
    try:
        assert agent.wait_registered(), agent.log_text()
        with Callees() as c:
            winner = c.start(SippCallee("switching_uas_answer.xml", sw.port, "1003",
                                        tmp_path / "winner"))
            caller = Uac(sw.port)
            try:
                resp = caller.call("71", timeout=15)
                assert resp is not None and resp.status == 200, resp
                caller.rtp.drain(2.5)  # the agent's late 200 comes and goes meanwhile
                bye = caller.bye()
                assert bye is not None and bye.status == 200
            finally:
                caller.close()
            assert winner.wait(10) == 0, winner.logs()
        poll(lambda: [c for c in agent.report().get("calls", []) if "seconds" in c or
                      "error" in c], timeout=5)
    finally:
        report = agent.finish()
    cdr = closed_cdr(sw, caller.call_id)
    assert sorted((leg["target"], leg["disposition"]) for leg in cdr["legs"]) == [
        ("1002", "canceled"), ("1003", "answered")], cdr["legs"]
    calls = report.get("calls", [])
    assert len(calls) == 1, (report, agent.log_text())
    late = calls[0]
    # pyVoIP did answer (its quirk); the switch hung that leg up with BYE within a second or so
    assert late["answered"], late
    assert late["ended_by_remote"] and late.get("seconds", 99) < 3, late
