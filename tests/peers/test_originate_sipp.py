"""`pbx originate` against a real `pbx run` with SIPp phones: click-to-call (ring FROM, then
dial TO and bridge), script mode (the script runs on the answered call with
PBX_DIRECTION=outbound and the --var variables), a busy FROM, and the allow-list refusing a
number out of the building.  Every SIPp scenario exits 0 only if the switch did what it expects
(INVITE, ACK, BYE); the switch's side is read back from `pbx cdr --json` and the script's log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uas import Phone
from tests.peers.helpers import cdrs, poll, read_lines, write_script
from tests.peers.switching_helpers import USERS, Callees, SippCallee, frame_hz, near, pcm16

pytestmark = pytest.mark.peer

SCRIPT = r"""
printf '%s|%s|%s|%s|%s\n' "$PBX_EVENT" "$PBX_DIRECTION" "$PBX_VAR_ORDER" "$PBX_CALLED" \
    "$PBX_CALLER" >> "EVENTS/$PBX_CALL_ID.events"
case "$PBX_EVENT" in
incoming) echo "wait 0.5"; echo "set result=confirmed"; echo "hangup";;
esac
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    base = tmp_path_factory.mktemp("originate")
    events = base / "events"
    events.mkdir()
    scripts = base / "scripts"
    scripts.mkdir()
    write_script(scripts / "notify.sh", SCRIPT.replace("EVENTS", str(events)), "/bin/sh")
    port = free_port()
    config = write_config(base, port=port, routes="", users=USERS, scripts=scripts)
    sw = start_switch(base, config, port)
    try:
        yield sw, events
    finally:
        sw.stop()
        print(f"--- pbx run log ({sw.log})\n{sw.log_text()[-12000:]}")


def originate(sw: SwitchProcess, *args: str) -> str:
    out = sw.pbx("originate", *args, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return str(json.loads(out.stdout)["call_id"])


def closed(sw: SwitchProcess, call_id: str, timeout: float = 20) -> dict[str, Any]:
    def fetch() -> dict[str, Any] | None:
        c = next((c for c in cdrs(sw) if c["call_id"] == call_id), None)
        return c if c is not None and c["end"] is not None else None

    found = poll(fetch, timeout=timeout, every=0.3)
    assert found, f"no closed CDR for {call_id}: {cdrs(sw)}"
    return dict(found)


def live(sw: SwitchProcess, call_id: str) -> dict[str, Any] | None:
    out = sw.pbx("calls", "--json")
    assert out.returncode == 0, out.stderr
    return next((c for c in json.loads(out.stdout)["calls"] if c["call_id"] == call_id), None)


def answering(sw: SwitchProcess, ext: str, work: Path) -> SippCallee:
    return SippCallee("switching_uas_answer.xml", sw.port, ext, work / f"answer{ext}")


def test_click_to_call_rings_from_then_bridges_to(env: tuple[SwitchProcess, Path],
                                                  tmp_path: Path) -> None:
    sw, _ = env
    with Callees() as c:
        agent = c.start(answering(sw, "1002", tmp_path))
        customer = c.start(answering(sw, "1003", tmp_path))
        call_id = originate(sw, "1002", "1003")
        state = poll(lambda: (s := live(sw, call_id)) and s["state"] == "bridged" and s,
                     timeout=15)
        assert state and state["detail"] == "1003", live(sw, call_id)
        out = sw.pbx("hangup", call_id)
        assert out.returncode == 0, out.stderr
        # each scenario passes only after its INVITE, our ACK and our BYE
        assert agent.wait(15) == 0, agent.logs()
        assert customer.wait(15) == 0, customer.logs()
    invite_to_agent = agent.messages().split("INVITE sip:", 1)[1].split("Content-Type", 1)[0]
    assert "<sip:1003@" in invite_to_agent  # the agent's phone shows whom it is calling
    cdr = closed(sw, call_id)
    assert cdr["route"] == "originate" and cdr["disposition"] == "answered", cdr
    assert (cdr["caller"], cdr["called"], cdr["hangup_by"]) == ("1002", "1003", "switch"), cdr
    assert [(leg["target"], leg["disposition"]) for leg in cdr["legs"]] == [
        ("1002", "answered"), ("1003", "answered")], cdr["legs"]
    out = sw.pbx("cdr", "--direction", "out", "--json")
    assert call_id in out.stdout, out.stdout


def test_script_mode_runs_the_script_with_direction_outbound(env: tuple[SwitchProcess, Path],
                                                             tmp_path: Path) -> None:
    sw, events = env
    with Callees() as c:
        phone = c.start(answering(sw, "1004", tmp_path))
        call_id = originate(sw, "1004", "--script", "notify.sh", "--var", "order=4711",
                            "--caller-id", "5550100")
        assert phone.wait(20) == 0, phone.logs()  # answered, then our BYE after `hangup`
    path = events / f"{call_id}.events"
    lines = poll(lambda: [x for x in read_lines(path) if x.startswith("hangup|")] and
                 read_lines(path), timeout=10)
    assert [x.split("|") for x in lines] == [
        ["incoming", "outbound", "4711", "1004", "5550100"],
        ["hangup", "outbound", "4711", "1004", "5550100"]], lines
    cdr = closed(sw, call_id)
    assert cdr["route"].startswith("originate:") and cdr["disposition"] == "answered", cdr
    assert cdr["vars"]["result"] == "confirmed" and cdr["vars"]["order"] == "4711", cdr
    assert cdr["hangup_by"] == "script", cdr


def test_busy_from_ends_the_call_busy(env: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    sw, events = env
    with Callees() as c:
        phone = c.start(SippCallee("switching_uas_busy.xml", sw.port, "1005", tmp_path / "b"))
        call_id = originate(sw, "1005", "--script", "notify.sh")
        assert phone.wait(15) == 0, phone.logs()
    cdr = closed(sw, call_id)
    assert cdr["disposition"] == "busy", cdr
    assert [(leg["target"], leg["disposition"], leg["sip_code"]) for leg in cdr["legs"]] == [
        ("1005", "busy", 486)], cdr["legs"]
    # the script heard of the call only at its end: it never answered
    assert [x.split("|")[0] for x in read_lines(events / f"{call_id}.events")] == ["hangup"]


def test_allow_list_and_arguments_are_checked_first(env: tuple[SwitchProcess, Path]) -> None:
    sw, _ = env
    out = sw.pbx("originate", "1002", "+79161234567")
    assert out.returncode == 1 and "not allowed by [originate] dial_allow" in out.stderr, out
    out = sw.pbx("originate", "1002", "--script", "../etc/passwd")
    assert out.returncode == 1 and "outside" in out.stderr, out
    out = sw.pbx("originate", "1002")
    assert out.returncode == 2, out
    out = sw.pbx("originate", "1002\r\nX: y", "1003")
    assert out.returncode == 1, out


def test_click_to_call_audio_both_ways(env: tuple[SwitchProcess, Path]) -> None:
    """FROM hears ringback (425 Hz) while TO rings, then TO's 700 Hz; TO hears FROM's 1100 Hz;
    TO hanging up ends the call (the switch BYEs FROM)."""
    sw, _ = env
    agent = Phone(sw.port, "1006", USERS["1006"], "answer", send_tone=1100)
    customer = Phone(sw.port, "1007", USERS["1007"], "answer-bye", ring=1.5, talk=2.0,
                     send_tone=700)
    try:
        for p in (agent, customer):
            assert p.register() == 200
            p.start()
        call_id = originate(sw, "1006", "1007")
        assert poll(lambda: agent.seen.byes_received, timeout=20), "FROM got no BYE"
    finally:
        agent.close()
        customer.close()
    heard_by_agent = frame_hz(pcm16(agent.rtp.audio()))
    heard_by_customer = frame_hz(pcm16(customer.rtp.audio()))
    assert near(heard_by_agent, 425) > 20, heard_by_agent  # ringback while TO rang
    assert near(heard_by_agent, 700) > 30, heard_by_agent
    assert near(heard_by_customer, 1100) > 30, heard_by_customer
    cdr = closed(sw, call_id)
    assert cdr["hangup_by"] == "callee" and cdr["disposition"] == "answered", cdr
