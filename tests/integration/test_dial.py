"""Switching end to end: registered phones as callees, a raw caller, `dial`/`transfer` scripts;
audio checked by content through the bridge, CDR legs, the `dial` event, the allow-list."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxcore.rtp.tones import tone
from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac, rms
from tests.integration.uas import Phone

USERS = {"1001": "pw1001", "1002": "pw1002", "1003": "pw1003"}
LOGGER = 'echo "$PBX_EVENT $PBX_RESULT $PBX_DIAL_STATUS $PBX_DIAL_CODE $PBX_DIAL_REASON' \
         ' $PBX_TALK_SECONDS" >> "$(dirname "$0")/events.log"\n'


def script(dir: Path, name: str, body: str) -> None:
    path = dir / name
    path.write_text("#!/bin/sh\n" + LOGGER + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    dir = tmp_path_factory.mktemp("dial")
    s = dir / "s"
    s.mkdir()
    on_dial = 'dial) echo "log dial-failed"; echo "reject busy";;\n'
    script(s, "one.sh", f'case "$PBX_EVENT" in incoming) echo "dial 1002 timeout=5";;\n{on_dial}esac\n')
    script(s, "hunt.sh", f'case "$PBX_EVENT" in incoming) echo "dial 1002 1003 timeout=3";;\n{on_dial}esac\n')
    script(s, "fork.sh", f'case "$PBX_EVENT" in incoming) echo "dial 1002 1003 mode=parallel timeout=5";;\n{on_dial}esac\n')
    script(s, "toll.sh", f'case "$PBX_EVENT" in incoming) echo "transfer 0900123456";;\n{on_dial}esac\n')
    script(s, "rec.sh", f'case "$PBX_EVENT" in incoming) echo "record_call start"; echo "transfer 1002";;\n{on_dial}esac\n')
    port = free_port()
    routes = "".join(f"""
[[routes]]
match = "^{num}$"
script = "{s / name}"
public = true
""" for num, name in [("1", "one.sh"), ("2", "hunt.sh"), ("3", "fork.sh"), ("4", "toll.sh"),
                      ("5", "rec.sh")])
    config = write_config(dir, port=port, routes=routes, scripts=s, users=USERS)
    sw = start_switch(dir, config, port)
    yield sw, s
    sw.stop()


def events(dir: Path) -> list[list[str]]:
    path = dir / "events.log"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return [line.split() for line in lines]


def last_cdr(sw: SwitchProcess, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = json.loads(sw.pbx("cdr", "--json", "--limit", "1").stdout)
        if out and out[0]["end"]:
            return out[0]
        time.sleep(0.1)
    raise AssertionError("CDR not closed")


def phone(sw: SwitchProcess, ext: str, behaviour: str, **kw: object) -> Phone:
    p = Phone(sw.port, ext, USERS[ext], behaviour, **kw)  # type: ignore[arg-type]
    assert p.register() == 200
    p.start()
    return p


def test_dial_bridges_audio_both_ways_and_callee_hangs_up(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    callee = phone(sw, "1002", "answer-bye", talk=2.0, send_tone=1000)
    caller = Uac(sw.port)
    try:
        resp = caller.call("1")
        assert resp is not None and resp.status == 200
        caller.rtp.drain(0.3)
        caller.rtp.send_audio(tone(440, 1000, amplitude=8000))  # the callee must hear this
        assert caller.wait_bye(10) is not None  # the callee's BYE ends the caller's leg
        time.sleep(0.2)
        heard_by_callee = rms(callee.rtp.audio())
        heard_by_caller = rms(caller.rtp.audio())
    finally:
        caller.close()
        callee.close()
    assert heard_by_callee > 1500, "the caller's tone did not reach the callee"
    assert heard_by_caller > 1500, "the callee's tone did not reach the caller"
    cdr = last_cdr(sw)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "callee"
    assert [leg["disposition"] for leg in cdr["legs"]] == ["answered"]
    assert cdr["legs"][0]["target"] == "1002" and cdr["legs"][0]["talk_seconds"] > 1
    ev = events(dir)
    assert ev[0] == ["incoming"] and ev[-1][:2] == ["hangup", "callee"]
    assert float(ev[-1][-1]) > 1.0  # PBX_TALK_SECONDS


def test_caller_hangs_up_during_bridge(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    callee = phone(sw, "1002", "answer")
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("1")) is not None and resp.status == 200
        caller.rtp.drain(0.5)
        assert (bye := caller.bye()) is not None and bye.status == 200
        deadline = time.monotonic() + 5
        while callee.seen.byes_received == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert callee.seen.byes_received == 1
    finally:
        caller.close()
        callee.close()
    cdr = last_cdr(sw)
    assert cdr["hangup_by"] == "caller"
    assert events(dir)[-1][:2] == ["hangup", "caller"]


def test_busy_callee_gives_dial_event(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    callee = phone(sw, "1002", "busy")
    caller = Uac(sw.port)
    try:
        resp = caller.call("1")
        assert resp is not None and resp.status == 486  # the script's `reject busy`
    finally:
        caller.close()
        callee.close()
    ev = events(dir)
    assert ["dial", "busy", "busy", "486"] in [e[:4] for e in ev]
    cdr = last_cdr(sw)
    assert cdr["legs"][0]["disposition"] == "busy" and cdr["legs"][0]["sip_code"] == 486


def test_sequential_hunt_reaches_the_second(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    first = phone(sw, "1002", "busy")
    second = phone(sw, "1003", "answer-bye", talk=0.5)
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("2")) is not None and resp.status == 200
        assert caller.wait_bye(10) is not None
    finally:
        caller.close()
        first.close()
        second.close()
    cdr = last_cdr(sw)
    assert [(leg["target"], leg["disposition"]) for leg in cdr["legs"]] == [
        ("1002", "busy"), ("1003", "answered")]
    events(dir)


def test_parallel_ring_cancels_the_loser(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    slow = phone(sw, "1002", "ring")
    fast = phone(sw, "1003", "answer-bye", ring=0.5, talk=0.5)
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("3")) is not None and resp.status == 200
        assert caller.wait_bye(10) is not None
        deadline = time.monotonic() + 3
        while slow.seen.cancels == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.seen.cancels == 1 and len(slow.seen.invites) == 1
    finally:
        caller.close()
        slow.close()
        fast.close()
    cdr = last_cdr(sw)
    assert {(leg["target"], leg["disposition"]) for leg in cdr["legs"]} == {
        ("1002", "canceled"), ("1003", "answered")}
    events(dir)


def test_dial_allow_refuses_premium_numbers(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    caller = Uac(sw.port)
    try:
        resp = caller.call("4")
        assert resp is not None and resp.status == 486
    finally:
        caller.close()
    ev = events(dir)
    dial = next(e for e in ev if e[0] == "dial")
    assert dial[1:3] == ["failed", "failed"] and "not" in dial and "allowed" in dial
    assert "dial 0900123456 refused" in sw.log_text()


def test_recorded_conversation_has_both_sides(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    callee = phone(sw, "1002", "answer-bye", talk=1.5, send_tone=1000)
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("5")) is not None and resp.status == 200
        caller.rtp.drain(0.2)
        caller.rtp.send_audio(tone(440, 1000, amplitude=8000))
        assert caller.wait_bye(10) is not None
    finally:
        caller.close()
        callee.close()
    cdr = last_cdr(sw)
    stereo = [r for r in cdr["recordings"] if r.endswith("-stereo.wav")]
    assert stereo
    import wave

    with wave.open(str(sw.dir / "var" / "recordings" / stereo[0])) as w:
        assert w.getnchannels() == 2
        frames = w.readframes(w.getnframes())
    import array

    samples = array.array("h", frames)
    left, right = samples[0::2], samples[1::2]
    assert max(abs(x) for x in left) > 3000 and max(abs(x) for x in right) > 3000
    events(dir)


def _wait(predicate, timeout: float = 8.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_blind_transfer_by_the_callee(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    agent = phone(sw, "1002", "answer")
    expert = phone(sw, "1003", "answer", send_tone=1000)
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("1")) is not None and resp.status == 200
        assert _wait(lambda: agent.seen.answered and agent.seen.acks >= 1)
        agent.refer("1003")
        assert _wait(lambda: 202 in agent.seen.responses)
        assert _wait(lambda: any(b"200 OK" in n for n in agent.seen.notifies))
        assert agent.seen.notifies[0].startswith(b"SIP/2.0 100")
        agent.hangup()  # the transferor leaves after the final NOTIFY, as phones do
        caller.rtp.packets.clear()
        caller.rtp.drain(1.0)
        assert rms(caller.rtp.audio()) > 1500, "the caller does not hear the transfer target"
        assert (bye := caller.bye()) is not None and bye.status == 200
        assert _wait(lambda: expert.seen.byes_received == 1)
    finally:
        caller.close()
        agent.close()
        expert.close()
    cdr = last_cdr(sw)
    legs = [(leg["target"], leg["disposition"], leg.get("transferred_to")) for leg in cdr["legs"]]
    assert legs == [("1002", "answered", "1003"), ("1003", "answered", None)]
    ev = events(dir)
    assert ["transfer", "answered"] in [e[:2] for e in ev]


def test_transfer_to_a_busy_target_brings_the_caller_back(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    agent = phone(sw, "1002", "answer", send_tone=700)
    busy = phone(sw, "1003", "busy")
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("1")) is not None and resp.status == 200
        assert _wait(lambda: agent.seen.answered and agent.seen.acks >= 1)
        agent.refer("1003")
        assert _wait(lambda: any(n.startswith(b"SIP/2.0 486") for n in agent.seen.notifies))
        caller.rtp.drain(0.3)
        caller.rtp.packets.clear()
        caller.rtp.drain(1.0)
        assert rms(caller.rtp.audio()) > 1500, "the caller is not back with the agent"
        caller.bye()
    finally:
        caller.close()
        agent.close()
        busy.close()
    last_cdr(sw)
    assert ["transfer", "busy"] in [e[:2] for e in events(dir)]


def test_hold_by_the_callee_plays_music_to_the_caller(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    agent = phone(sw, "1002", "answer")  # sends no audio of its own
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("1")) is not None and resp.status == 200
        assert _wait(lambda: agent.seen.answered and agent.seen.acks >= 1)
        caller.rtp.drain(0.5)
        before = rms(caller.rtp.audio())
        agent.hold(True)
        assert _wait(lambda: 200 in agent.seen.responses)
        caller.rtp.packets.clear()
        caller.rtp.drain(1.5)
        assert rms(caller.rtp.audio()) > 300 > before, "no hold music while held"
        agent.hold(False)
        time.sleep(0.3)
        caller.rtp.packets.clear()
        caller.rtp.drain(0.5)
        assert rms(caller.rtp.audio()) < 300  # relay again: the agent is silent
        caller.bye()
    finally:
        caller.close()
        agent.close()
    leg = last_cdr(sw)["legs"][0]
    # Held from the re-INVITE's 200 through the 1.5 s drain, so at least that long (reports'
    # hold time); talk includes it.
    assert 1.5 <= leg["hold_seconds"] < leg["talk_seconds"]
    events(dir)


def test_failed_transfer_after_the_agent_left_runs_the_fallback(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    agent = phone(sw, "1002", "answer")
    busy = phone(sw, "1003", "ring-busy", ring=1.0)  # busy, but only after the agent left
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("1")) is not None and resp.status == 200
        assert _wait(lambda: agent.seen.answered and agent.seen.acks >= 1)
        agent.refer("1003")
        assert _wait(lambda: 202 in agent.seen.responses)
        agent.hangup()  # leaves at once, before the transfer's outcome
        assert caller.wait_bye(15) is not None  # the route's fallback (default: hangup)
    finally:
        caller.close()
        agent.close()
        busy.close()
    cdr = last_cdr(sw)
    assert cdr["hangup_by"] == "switch"
    events(dir)


def test_every_registered_phone_of_an_extension_rings(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    desk = phone(sw, "1002", "ring")  # two phones registered as 1002: both ring,
    soft = phone(sw, "1002", "answer-bye", ring=0.4, talk=0.5)  # the first to answer wins
    caller = Uac(sw.port)
    try:
        assert (resp := caller.call("1")) is not None and resp.status == 200
        assert caller.wait_bye(10) is not None
        assert _wait(lambda: desk.seen.cancels == 1)
        assert len(desk.seen.invites) == len(soft.seen.invites) == 1
    finally:
        caller.close()
        desk.close()
        soft.close()
    cdr = last_cdr(sw)
    assert sorted((leg["target"], leg["disposition"]) for leg in cdr["legs"]) == [
        ("1002", "answered"), ("1002", "canceled")]
    assert len({leg["uri"] for leg in cdr["legs"]}) == 2
    events(dir)


def test_callers_cancel_is_propagated_to_the_ringing_callee(site) -> None:  # type: ignore[no-untyped-def]
    sw, dir = site
    callee = phone(sw, "1002", "ring")
    caller = Uac(sw.port)
    try:
        caller.start_invite("1")
        assert _wait(lambda: len(callee.seen.invites) == 1)
        caller.cancel()
        assert _wait(lambda: callee.seen.cancels == 1), "the callee never got the CANCEL"
    finally:
        caller.close()
        callee.close()
    cdr = last_cdr(sw)
    assert cdr["disposition"] == "abandoned" and cdr["hangup_by"] == "caller"
    assert [(leg["target"], leg["disposition"], leg["reason"]) for leg in cdr["legs"]] == [
        ("1002", "canceled", "caller hung up")]
    events(dir)
