"""Call-centre queues end to end: a real `pbx run`, SIPp agents registered with digest, callers
from the test UAC, agents logged in by the CLI (`pbx agent`) and by feature code (*71).

What an operator would check is checked the way they would: `pbx journal --json` (Asterisk
queue_log rows), `pbx cdr --json` (the queue segment and every agent leg), `pbx agents --json`,
what the route script was told (its events file), what the agent's phone received (SIPp's
messages.log: the screen pop), and what the caller heard (RTP energy).
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import textwrap
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac, rms
from tests.peers.helpers import closed_cdr, poll, read_lines, write_script
from tests.peers.switching_helpers import (
    USERS,
    Agent,
    Callees,
    SippCallee,
    frame_hz,
    near,
    pcm16,
    wait_rtp,
)

pytestmark = pytest.mark.peer

SCRIPT = r"""
printf '%s|%s|%s|%s|%s|%s|%s\n' "$PBX_EVENT" "$PBX_RESULT" "$PBX_QUEUE" "$PBX_QUEUE_WAIT" \
    "$PBX_QUEUE_POSITION" "$PBX_AGENT" "$PBX_DIGITS" >> "EVENTS/$PBX_CALL_ID.events"
case "$PBX_EVENT" in
incoming)
    case "$PBX_CALLED" in
    70) echo "set CRM=cust-42"; echo "queue support";;
    71) echo "queue support priority=10";;
    72) echo "queue lonely timeout=2";;
    73) echo "queue lonely exit_key=9";;
    74) echo "queue closed";;
    75) echo "queue quiet";;
    76) echo "queue whispered";;
    77) echo "queue sleepy timeout=6";;
    78) echo "queue tiers";;
    esac;;
queue) echo "log left the queue: $PBX_RESULT"; echo hangup;;
esac
"""

ALERT = r"""
printf '%s|%s|%s|%s|%s\n' "$PBX_EVENT" "$PBX_QUEUE" "$PBX_ALERT_FIGURE" "$PBX_ALERT_STATE" \
    "$PBX_ALERT_VALUE" >> "EVENTS/alerts"
"""


def silence_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    base = tmp_path_factory.mktemp("queues")
    events = base / "events"
    events.mkdir()
    script = write_script(base / "queue.sh", SCRIPT.replace("EVENTS", str(events)), "/bin/sh")
    alert = write_script(base / "alert.sh", ALERT.replace("EVENTS", str(events)), "/bin/sh")
    sounds = base / "sounds"  # the stock prompts plus a silent hold music (to hear announcements)
    shutil.copytree(REPO / "sounds", sounds)
    silence_wav(sounds / "en" / "silence.wav", 1.0)
    routes = f"""
        [[routes]]
        match = "^7[0-9]$"
        script = "{script}"
        public = true

        [[queues]]
        name = "support"
        strategy = "round-robin"
        members = ["1002", "1003"]
        ring_timeout = 10
        wrapup = 0

        [[queues]]
        name = "lonely"
        members = ["1004"]
        alert = "{alert}"
        alert_waiting = 2

        [[queues]]
        name = "closed"
        members = ["1005"]
        empty = "leave"

        [[queues]]
        name = "quiet"
        members = ["1006"]
        hold_music = "silence"
        announce_every = 2

        [[queues]]
        name = "whispered"
        members = ["1007"]
        hold_music = "silence"
        whisper = "goodbye"

        [[queues]]
        name = "sleepy"
        members = ["1001"]
        ring_timeout = 2
        autopause_after = 1

        [[queues]]
        name = "tiers"
        strategy = "linear"
        members = ["1008", "1009:2"]
        overflow = [{{after = 2, tier = 2}}]
        """
    dir = base / "switch"
    dir.mkdir()
    port = free_port()
    config = write_config(dir, port=port, routes=textwrap.dedent(routes), users=USERS)
    config.write_text(config.read_text().replace(f'sounds = "{REPO / "sounds"}"',
                                                 f'sounds = "{sounds}"'))
    sw = start_switch(dir, config, port)
    try:
        yield sw, events
    finally:
        sw.stop()
        print(f"--- pbx run log ({sw.log})\n{sw.log_text()[-20000:]}")


def pbx_json(sw: SwitchProcess, *args: str) -> Any:
    out = sw.pbx(*args, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def journal(sw: SwitchProcess, queue: str) -> list[dict[str, Any]]:
    return list(pbx_json(sw, "journal", "--queue", queue, "--limit", "500"))


def agent(sw: SwitchProcess, ext: str) -> dict[str, Any]:
    agents = pbx_json(sw, "agents")["agents"]
    return next(a for a in agents if a["extension"] == ext)


def events_of(events: Path, call_id: str) -> list[list[str]]:
    return [line.split("|") for line in read_lines(events / f"{call_id}.events")]


def caller(sw: SwitchProcess, number: str, user: str = "5550100") -> Uac:
    uac = Uac(sw.port, user=user)
    resp = uac.call(number)
    assert resp is not None and resp.status == 200, resp
    return uac


def test_caller_reaches_a_logged_in_agent_with_screen_pop(env: tuple[SwitchProcess, Path],
                                                          tmp_path: Path) -> None:
    sw, events = env
    with Callees() as callees:
        agent_phone = callees.start(SippCallee("queue_agent.xml", sw.port, "1002",
                                               tmp_path / "a1002"))
        login = sw.pbx("agent", "login", "1002", "--queue", "support")
        assert login.returncode == 0, login.stdout + login.stderr
        assert agent(sw, "1002")["state"] == "available"
        uac = caller(sw, "70", user="5550142")
        try:
            assert uac.wait_bye(15) is not None  # the agent talked ~1.5 s and hung up
        finally:
            uac.close()
        assert agent_phone.wait() == 0, agent_phone.logs()
        invite = agent_phone.messages()
    cdr = closed_cdr(sw, uac.call_id)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "callee"
    assert [(q["queue"], q["agent"], q["outcome"], q["position"]) for q in cdr["queues"]] == [
        ("support", "1002", "answered", 1)]
    assert [(leg["target"], leg["disposition"]) for leg in cdr["legs"]] == [("1002", "answered")]
    # Screen pop: the queue and the caller in the display name, the CRM id from the script.
    assert 'From: "[support] 5550142"' in invite, invite
    lower = invite.lower()  # header names are case-insensitive (RFC 3261 §7.3.1)
    assert "x-pbx-var-crm: cust-42" in lower and "x-pbx-queue: support" in lower
    rows = [r["event"] for r in journal(sw, "support") if r["callid"] == cdr["call_id"]]
    assert rows == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    # The script's hangup event still knows which queue and agent served the call.
    hangup = events_of(events, cdr["call_id"])[-1]
    assert hangup[0] == "hangup" and hangup[2] == "support" and hangup[5] == "1002"
    assert float(hangup[3]) < 5 and hangup[4] == "1"


def test_vip_is_served_before_earlier_callers(env: tuple[SwitchProcess, Path],
                                              tmp_path: Path) -> None:
    sw, _ = env
    with Callees() as callees:
        callees.start(SippCallee("queue_agent.xml", sw.port, "1003", tmp_path / "a1003",
                                 calls=3, timeout=40))
        assert sw.pbx("agent", "login", "1003", "--queue", "support").returncode == 0
        assert sw.pbx("agent", "pause", "1003", "--reason", "briefing").returncode == 0
        assert agent(sw, "1003")["reason"] == "briefing"
        uacs = []
        try:
            for number, user in (("70", "5550001"), ("70", "5550002"), ("71", "5550003")):
                uacs.append(caller(sw, number, user))
                time.sleep(0.3)  # arrival order is the order of the calls
            assert sw.pbx("agent", "unpause", "1003").returncode == 0
            for uac in uacs:
                assert uac.wait_bye(25) is not None
        finally:
            for uac in uacs:
                uac.close()
    served = [closed_cdr(sw, u.call_id) for u in uacs]
    by_call = {c["call_id"]: c["caller"] for c in served}
    connects = [by_call[r["callid"]] for r in journal(sw, "support")
                if r["event"] == "CONNECT" and r["callid"] in by_call]
    assert connects == ["5550003", "5550001", "5550002"]  # the VIP first, then FIFO
    pauses = [(r["event"], r["data1"]) for r in journal(sw, "support")
              if r["agent"] == "1003" and r["event"] in ("PAUSE", "UNPAUSE")]
    assert pauses[:1] == [("PAUSE", "briefing")]


def test_timeout_exit_key_and_empty(env: tuple[SwitchProcess, Path]) -> None:
    sw, events = env
    uac = caller(sw, "72", user="5550201")  # nobody logged in to `lonely`: waits, times out
    try:
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    timed_out = closed_cdr(sw, uac.call_id)
    left = [e for e in events_of(events, timed_out["call_id"]) if e[0] == "queue"]
    assert [(e[1], e[2]) for e in left] == [("timeout", "lonely")] and float(left[0][3]) >= 1.9
    assert timed_out["queues"][0]["outcome"] == "timeout"

    uac = caller(sw, "73", user="5550202")
    try:
        wait_rtp(uac.rtp)  # the hold music tells where the switch's RTP comes from
        uac.rtp.send_dtmf("9")
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    keyed = closed_cdr(sw, uac.call_id)
    left = [e for e in events_of(events, keyed["call_id"]) if e[0] == "queue"]
    assert [(e[1], e[6]) for e in left] == [("exit_key", "9")]

    uac = caller(sw, "74", user="5550203")  # `closed` leaves when nobody is logged in
    try:
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()
    empty = closed_cdr(sw, uac.call_id)
    assert [e[1] for e in events_of(events, empty["call_id"]) if e[0] == "queue"] == ["empty"]
    rows = {r["callid"]: r["event"] for r in journal(sw, "lonely") + journal(sw, "closed")}
    assert rows[timed_out["call_id"]] == "EXITWITHTIMEOUT"
    assert rows[keyed["call_id"]] == "EXITWITHKEY"
    assert rows[empty["call_id"]] == "EXITEMPTY"


def test_alert_program_runs_once_per_crossing(env: tuple[SwitchProcess, Path]) -> None:
    sw, events = env
    uacs = [caller(sw, "73", user=f"555030{i}") for i in range(3)]  # threshold: 2 waiting
    try:
        raised = poll(lambda: read_lines(events / "alerts"), timeout=5)
        assert raised == ["queue_alert|lonely|waiting|raised|2"]
        status = next(q for q in pbx_json(sw, "queues")["queues"] if q["name"] == "lonely")
        assert status["waiting"] == 3 and status["alert"]["figure"] == "waiting"
    finally:
        for uac in uacs:
            uac.bye()
            uac.close()
    lines = poll(lambda: read_lines(events / "alerts")[1:], timeout=5)
    assert lines == ["queue_alert|lonely|waiting|cleared|1"]  # below 2 * 0.8, once
    time.sleep(0.5)
    assert len(read_lines(events / "alerts")) == 2


def test_feature_code_logs_the_calling_agent_in(env: tuple[SwitchProcess, Path]) -> None:
    sw, _ = env
    assert agent(sw, "1004")["state"] == "logged_out"
    uac = Uac(sw.port, user="1004", password=USERS["1004"])
    try:
        resp = uac.call("*71")
        assert resp is not None and resp.status == 200
        assert uac.wait_bye(10) is not None  # "you are logged in", then the switch hangs up
        heard = uac.rtp.audio()
    finally:
        uac.close()
    assert rms(heard) > 300 and len(heard) > 8000  # the confirmation prompt was played
    assert agent(sw, "1004")["state"] == "available"
    logins = [r for r in journal(sw, "lonely") if r["event"] == "AGENTLOGIN"]
    assert logins and logins[-1]["agent"] == "1004"
    assert sw.pbx("agent", "logout", "1004").returncode == 0
    assert agent(sw, "1004")["state"] == "logged_out"


def test_announcements_are_heard_over_the_hold_music(env: tuple[SwitchProcess, Path]) -> None:
    sw, _ = env
    uac = caller(sw, "75", user="5550401")  # hold music is silence here; announce every 2 s
    try:
        uac.rtp.drain(5.5)
        uac.bye()
    finally:
        uac.close()
    samples = struct.unpack(f"<{len(uac.rtp.audio()) // 2}h", uac.rtp.audio())
    frames = [samples[i:i + 800] for i in range(0, len(samples) - 800, 800)]  # 100 ms
    loud = [math.sqrt(sum(s * s for s in f) / len(f)) > 300 for f in frames]
    assert sum(loud) >= 10, loud  # at least a second of speech ...
    assert sum(not x for x in loud) >= 10, loud  # ... between silences (the music)


def test_whisper_is_heard_by_the_agent_only(env: tuple[SwitchProcess, Path],
                                            tmp_path: Path) -> None:
    sw, _ = env
    phone = Agent(sw.port, "1007", tmp_path / "a1007", tone_hz=1000, tone_seconds=6)
    try:
        assert phone.wait_registered(), phone.log_text()
        assert sw.pbx("agent", "login", "1007").returncode == 0
        poll(lambda: agent(sw, "1007")["registered"], timeout=5)
        uac = caller(sw, "76", user="5550601")
        try:
            uac.rtp.drain(7)  # whisper (~2 s) to the agent, then the agent's tone to us
            uac.bye()
        finally:
            uac.close()
        report = phone.finish()
    finally:
        phone.finish()
    heard_by_agent = report["calls"][0]["hz"]
    assert len([hz for hz in heard_by_agent if not near([hz], 1000)]) >= 20, report  # speech
    samples = pcm16(uac.rtp.audio())
    heard_by_caller = frame_hz(samples)
    assert near(heard_by_caller, 1000) >= 50  # the agent's tone reached the caller ...
    assert len(heard_by_caller) - near(heard_by_caller, 1000) <= 5  # ... the whisper did not


def test_an_agent_who_does_not_answer_is_paused(env: tuple[SwitchProcess, Path],
                                                tmp_path: Path) -> None:
    sw, events = env
    with Callees() as callees:
        phone = callees.start(SippCallee("switching_uas_ring.xml", sw.port, "1001",
                                         tmp_path / "a1001"))
        assert sw.pbx("agent", "login", "1001", "--queue", "sleepy").returncode == 0
        uac = caller(sw, "77", user="5550701")
        try:
            paused = poll(lambda: agent(sw, "1001")["state"] == "paused", timeout=8)
            assert paused, agent(sw, "1001")
            assert agent(sw, "1001")["reason"] == "no-answer"
            assert uac.wait_bye(10) is not None  # then nobody is left: timeout after 6 s
        finally:
            uac.close()
        assert phone.wait() == 0, phone.logs()  # the switch CANCELled the ringing phone
    cdr = closed_cdr(sw, uac.call_id)
    assert [(leg["target"], leg["disposition"]) for leg in cdr["legs"]] == [("1001", "no answer")]
    rows = [(r["event"], r["data1"]) for r in journal(sw, "sleepy")]
    assert ("PAUSE", "no-answer") in rows and any(e == "RINGNOANSWER" for e, _ in rows)


def test_overflow_offers_the_next_tier_after_its_wait(env: tuple[SwitchProcess, Path],
                                                      tmp_path: Path) -> None:
    sw, _ = env
    with Callees() as callees:
        callees.start(SippCallee("queue_agent.xml", sw.port, "1009", tmp_path / "a1009"))
        assert sw.pbx("agent", "login", "1009").returncode == 0  # the reserve, tier 2
        assert sw.pbx("agent", "login", "1008").returncode == 0  # tier 1, but no phone
        uac = caller(sw, "78", user="5550801")
        try:
            assert uac.wait_bye(15) is not None
        finally:
            uac.close()
    cdr = closed_cdr(sw, uac.call_id)
    assert cdr["queues"][0]["agent"] == "1009"
    connect = next(r for r in journal(sw, "tiers") if r["event"] == "CONNECT"
                   and r["callid"] == cdr["call_id"])
    assert int(connect["data1"]) >= 2  # not before the overflow rule's 2 s
