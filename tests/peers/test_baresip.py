"""baresip 1.0.0, the most common Linux softphone, against the real switch (issue 9 item 15).

Every phone here is a baresip process (tests/peers/baresip_phone.py) with the switch's MD5-only
challenge: register over UDP and TCP, call an IVR and key RFC 4733 digits (the script's
`gather` event must carry them), call another baresip through `dial` with audio both ways
(checked by frequency in the WAVs each phone recorded), hold and resume (re-INVITE sendonly:
the held side stops hearing the tone, then hears it again), and a blind transfer by REFER from
the answering phone.  Each test is bounded by baresip's own `-t` lifetime and explicit waits.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import SwitchProcess
from tests.peers.baresip_phone import Baresip
from tests.peers.helpers import closed_cdr, script_runs, summary, trace, write_script
from tests.peers.switching_helpers import USERS, frame_hz, near, switch, tone_wav

pytestmark = pytest.mark.peer

ROUTES = r"""
case "$PBX_EVENT" in
incoming)
    case "$PBX_CALLED" in
    100) echo answer; echo "gather max=6 finish=# timeout=6";;
    70) echo "dial 1002 timeout=10";;
    esac;;
gather) echo "log got $PBX_DIGITS"; echo hangup;;
esac
"""


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    base = tmp_path_factory.mktemp("baresip")
    script = write_script(base / "route.sh", ROUTES, "/bin/sh")
    routes = f"""
        [[routes]]
        match = "^(100|70)$"
        script = "{script}"
        """
    with switch(base / "switch", routes) as s:
        yield s


@pytest.fixture
def phones(tmp_path: Path, sw: SwitchProcess) -> Iterator[Any]:
    """phones(ext, transport, tone_hz=None): a started baresip, stopped (by pid) after the
    test; its log is printed when the test fails."""
    started: list[Baresip] = []

    def start(ext: str, transport: str = "udp", tone_hz: int | None = None,
              lifetime: int = 40) -> Baresip:
        wav = tone_wav(tmp_path / f"{ext}.wav", tone_hz, 12) if tone_hz else None
        phone = Baresip(tmp_path / f"baresip-{ext}", user=ext, password=USERS[ext],
                        pbx_port=sw.port, transport=transport, wav=wav, lifetime=lifetime)
        started.append(phone)
        assert phone.registered(), phone.log_text()
        return phone

    try:
        yield start
    finally:
        for phone in started:
            phone.stop()
            print(f"--- baresip {phone.user} ({phone.log})\n{phone.log_text()[-3000:]}")


def frames(phone: Baresip) -> list[float | None]:
    """Per 20 ms frame of what `phone` heard (sndfile's -dec.wav): its frequency, or None
    when quiet."""
    with wave.open(str(phone.recordings()["dec"])) as w:
        samples = list(memoryview(w.readframes(w.getnframes())).cast("h"))
    out: list[float | None] = []
    for i in range(0, len(samples) - 159, 160):
        chunk = samples[i:i + 160]
        loud = frame_hz(chunk)
        out.append(loud[0] if loud else None)
    return out


def heard(phone: Baresip) -> list[float]:
    """The frequency of every loud 20 ms frame of what `phone` received."""
    return [hz for hz in frames(phone) if hz is not None]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register(sw: SwitchProcess, phones: Any, transport: str) -> None:
    """MD5 alone in the 401 (libre 1.1.0 gives up when SHA-256 is offered too)."""
    phone = phones("1004", transport)
    assert f"1004@127.0.0.1: {{0/{transport.upper()}/v4}} 200 OK" in phone.log_text()
    lines = [x for x in sw.log_text().splitlines() if "1004" in x]
    assert any("REGISTER 1004 from 127.0.0.1:" in x and x.endswith("-> 200") for x in lines)
    assert not [x for x in lines if "authentication failed" in x], lines


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_ivr_gets_rfc4733_digits(sw: SwitchProcess, phones: Any, transport: str) -> None:
    caller = phones("1005", transport)
    caller.dial("100")
    established = caller.wait_event("CALL_ESTABLISHED", 10)
    assert established is not None, caller.log_text()
    assert caller.wait_event("CALL_RTPESTAB", 5) is not None, caller.log_text()
    caller.send_digits("4711#")
    assert caller.wait_event("CALL_CLOSED", 10) is not None, caller.log_text()  # the script hung up
    cdr = closed_cdr(sw, established["id"])
    entries = trace(sw, cdr["call_id"])
    runs = script_runs(entries, "gather")
    assert [r["env"].get("PBX_DIGITS") for r in runs] == ["4711"], summary(entries)
    assert runs[0]["env"].get("PBX_RESULT") == "ok"


@pytest.mark.parametrize(("caller_transport", "callee_transport"), [("udp", "tcp"),
                                                                    ("tcp", "udp")])
def test_phone_to_phone_audio_both_ways_and_hold(sw: SwitchProcess, phones: Any,
                                                  caller_transport: str,
                                                  callee_transport: str) -> None:
    """1001 (440 Hz) calls route 70, which dials 1002 (1 kHz): each hears the other's tone.
    Then 1001 holds (re-INVITE a=sendonly) for 2 s and resumes: 1002 hears no 440 Hz while
    held, and hears it again after."""
    callee = phones("1002", callee_transport, tone_hz=1000)
    caller = phones("1001", caller_transport, tone_hz=440)
    caller.dial("70")
    established = caller.wait_event("CALL_ESTABLISHED", 10)
    assert established is not None, caller.log_text()
    assert callee.wait_event("CALL_ESTABLISHED", 5) is not None, callee.log_text()
    caller.pump(2.5)
    assert caller.command("hold")["ok"], caller.log_text()
    caller.pump(2.0)
    assert caller.command("resume")["ok"], caller.log_text()
    caller.pump(2.0)
    caller.command("hangup")
    assert callee.wait_event("CALL_CLOSED", 5) is not None, callee.log_text()

    to_caller, to_callee = heard(caller), heard(callee)
    assert near(to_caller, 1000) >= 50, ("1001 did not hear 1002's 1 kHz", to_caller[:20])
    assert near(to_callee, 440) >= 50, ("1002 did not hear 1001's 440 Hz", to_callee[:20])
    # hold: the longest run of frames without 440 Hz between the first and the last 440 Hz
    # frame is the held time (frames of other sounds, or silence, which is not in the list).
    marks = [i for i, hz in enumerate(frames(callee)) if hz is not None and
             abs(hz - 440) <= 0.08 * 440]
    assert len(marks) > 50, "1002 heard no 440 Hz"
    gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    held = max(range(len(gaps)), key=gaps.__getitem__)
    assert gaps[held] * 0.02 >= 1.0, ("no hold gap in 1002's audio", max(gaps))
    assert len(marks) - (held + 1) >= 25, "1002 did not hear 1001 again after resume"

    cdr = closed_cdr(sw, established["id"])
    assert [(leg["target"], leg["disposition"]) for leg in cdr["legs"]] == [("1002", "answered")]
    assert cdr["hangup_by"] == "caller", cdr


def test_blind_transfer_by_refer_from_the_answering_phone(sw: SwitchProcess,
                                                           phones: Any) -> None:
    """1001 calls route 70 → 1002 answers and transfers (REFER) to 1003 → 1003 rings and
    answers, 1002's call ends, 1001 is now talking to 1003 (hears its 1 kHz)."""
    agent = phones("1002", "udp")
    target = phones("1003", "tcp", tone_hz=1000)
    caller = phones("1001", "udp")
    caller.dial("70")
    established = caller.wait_event("CALL_ESTABLISHED", 10)
    assert established is not None, caller.log_text()
    assert agent.wait_event("CALL_ESTABLISHED", 5) is not None, agent.log_text()
    agent.pump(1.0)
    assert agent.command("transfer", "1003")["ok"], agent.log_text()
    assert target.wait_event("CALL_ESTABLISHED", 10) is not None, target.log_text()
    assert agent.wait_event("CALL_CLOSED", 10) is not None, agent.log_text()
    caller.pump(2.5)
    caller.command("hangup")
    assert target.wait_event("CALL_CLOSED", 5) is not None, target.log_text()
    assert near(heard(caller), 1000) >= 40, "1001 did not hear the transfer target"
    cdr = closed_cdr(sw, established["id"])
    legs = [(leg["target"], leg["disposition"], leg.get("transferred_to")) for leg in cdr["legs"]]
    assert legs == [("1002", "answered", "1003"), ("1003", "answered", None)], cdr["legs"]


def test_sha256_offered_beside_md5_locks_baresip_out(tmp_path: Path) -> None:
    """Why MD5 alone is the default: with `digest_algorithms = ["SHA-256", "MD5"]` Debian 12's
    baresip (libre 1.1.0) refuses the whole challenge set and never registers."""
    from tests.integration.switch_harness import free_port, start_switch, write_config

    port = free_port()
    config = write_config(tmp_path, port=port, routes="", users=USERS)
    text = config.read_text()
    config.write_text(text.replace('realm = "pbxcore-test"',
                                   'realm = "pbxcore-test"\ndigest_algorithms = ["SHA-256", "MD5"]'))
    sw = start_switch(tmp_path, config, port)
    phone = Baresip(tmp_path / "baresip", user="1001", password=USERS["1001"], pbx_port=port,
                    lifetime=15)
    try:
        assert not phone.registered(timeout=3)
    finally:
        phone.stop()
        sw.stop()
    assert "-> 200" not in sw.log_text()
    assert "Function not implemented" in phone.log_text(), phone.log_text()
