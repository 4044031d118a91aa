"""SIPp against a real `pbx run`: the demo IVR with digest auth and RFC 2833 keys over UDP and TCP
(menu walk, and the record branch fed from a pcap),
CANCEL before answer, the caller hanging up mid-prompt, failing scripts and their fallback, and
hostile caller IDs.

Every test checks three sides: SIPp's exit status (it expects exactly the messages a phone
would), the audio the switch sent (a Python socket is the SDP's media address), and what the switch
recorded (`pbx cdr --json`, `pbx trace CALL --json`, and the events the scripts themselves saw).
"""

from __future__ import annotations

import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.switch_harness import REPO, SwitchProcess
from tests.peers.helpers import (
    PASSWORD_1001,
    actions,
    closed_cdr,
    demo_ivr_route,
    poll,
    read_lines,
    route,
    running_switch,
    script_runs,
    summary,
    trace,
    write_script,
)
from tests.sipp.sipp_peer import RtpSink, pcmu_rms, rms16, run_sipp, wav_to_pcap

pytestmark = pytest.mark.peer

# Every test script appends its PBX_EVENT to <events>/<PBX_CALL_ID>.events, so a test can check
# that the script saw exactly one `hangup`, last.
LOG_EVENT = 'printf "%s\\n" "$PBX_EVENT" >> "{events}/$PBX_CALL_ID.events"'


def _scripts(dir: Path, events: Path) -> dict[str, Path]:
    log = LOG_EVENT.format(events=events)
    return {
        # Decides slowly: the caller gets 180 and gives up (CANCEL) before the answer.
        "slow_answer": write_script(dir / "slow_answer.sh", f"""
            {log}
            if [ "$PBX_EVENT" = incoming ]; then sleep 3; echo answer; echo hangup; fi
            """, "/bin/sh"),
        # A 10 s prompt the caller will not wait for.
        "long_prompt": write_script(dir / "long_prompt.sh", f"""
            {log}
            if [ "$PBX_EVENT" = incoming ]; then echo answer; echo "play moh"; echo hangup; fi
            """, "/bin/sh"),
        # Three ways to fail on `incoming` (the hangup event is handled normally).
        "fail_exit": write_script(dir / "fail_exit.sh", f"""
            {log}
            [ "$PBX_EVENT" = hangup ] && exit 0
            echo answer
            echo boom-stderr-marker >&2
            exit 1
            """, "/bin/sh"),
        "fail_garbage": write_script(dir / "fail_garbage.sh", f"""
            {log}
            [ "$PBX_EVENT" = hangup ] && exit 0
            echo "flibbertigibbet 42 !!"
            """, "/bin/sh"),
        "fail_slow": write_script(dir / "fail_slow.sh", f"""
            {log}
            [ "$PBX_EVENT" = hangup ] && exit 0
            echo slow-marker >&2
            sleep 5
            echo answer
            """, "/bin/sh"),
        # Echoes a fixed answer; keeps what it was given as the caller ID, and where it ran.
        "inject": write_script(dir / "inject.sh", f"""
            {log}
            printf '%s|%s|%s\\n' "$PBX_CALLER" "$PBX_CALLER_NAME" "$PWD" >> "{events}/$PBX_CALL_ID.caller"
            if [ "$PBX_EVENT" = incoming ]; then echo answer; echo "play beep"; echo hangup; fi
            """, "/bin/bash"),
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    base = tmp_path_factory.mktemp("sipp_ivr")
    events = base / "events"
    events.mkdir()
    s = _scripts(base, events)
    routes = "\n".join([
        demo_ivr_route("^100$"),
        route("^300$", s["slow_answer"], timeout=10, public=True),
        route("^301$", s["long_prompt"], public=True),
        route("^310$", s["fail_exit"], public=True),
        route("^311$", s["fail_garbage"], public=True),
        route("^312$", s["fail_slow"], timeout=1, public=True),
        route("^320$", s["inject"], public=True),
    ])
    with running_switch(base / "switch", routes) as sw:
        yield sw, events


def _events(events: Path, call_id: str) -> list[str]:
    """The events a test script saw, once its hangup event has been logged (bounded wait)."""
    path = events / f"{call_id}.events"
    poll(lambda: "hangup" in read_lines(path), timeout=5)
    time.sleep(0.3)  # a second hangup event would land now
    return read_lines(path)


# ---------------------------------------------------------------- the demo IVR, UDP and TCP


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_demo_ivr_menu_with_digest_and_rfc2833(env: tuple[SwitchProcess, Path], tmp_path: Path,
                                               transport: str) -> None:
    sw, _ = env
    with RtpSink() as sink:
        res = run_sipp("ivr_menu.xml", sw.port, tmp_path / "sipp", service="100",
                       transport=transport, user="1001", password=PASSWORD_1001,
                       keys={"sink_port": str(sink.port)}, timeout=35)
    assert res.rc == 0, res.logs()
    # The INVITE was challenged and the second one carried our digest.
    msgs = res.messages()
    assert "SIP/2.0 401" in msgs and "Authorization: Digest" in msgs, res.logs()

    # The prompts reached the SDP's media address as audible PCMU.
    audio = sink.pcmu()
    assert len(audio) >= 400, f"only {len(audio)} PCMU packets"  # ~18 s of prompts at 50/s
    assert pcmu_rms(audio[:75]) > 500, "the welcome prompt is silent"

    cdr = closed_cdr(sw, res.call_id)
    assert (cdr["caller"], cdr["called"], cdr["disposition"]) == ("1001", "100", "answered")
    assert cdr["hangup_by"] == "script" and cdr["script_errors"] == []

    entries = trace(sw, cdr["call_id"])
    gathers = script_runs(entries, "gather")
    got = [(g["env"]["PBX_RESULT"], g["env"]["PBX_DIGITS"]) for g in gathers]
    assert got == [("ok", "1"), ("ok", "9"), ("ok", "9"), ("ok", "9")], summary(entries)
    done = actions(entries)
    # Key 1 is the "your number" branch: the caller's number, read back digit by digit.
    assert "say digits 1001" in done
    assert done[done.index("say digits 1001") - 1] == "play your-number-is"
    assert done[-3:] == ["play invalid", "play goodbye", "hangup"]
    assert [r["event"] for r in script_runs(entries)].count("hangup") == 1


# ---------------------------------------------------------------- CANCEL and BYE from the caller


def test_cancel_before_answer(env: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    sw, events = env
    res = run_sipp("cancel.xml", sw.port, tmp_path / "sipp", service="300", timeout=15)
    assert res.rc == 0, res.logs()
    cdr = closed_cdr(sw, res.call_id)
    assert cdr["disposition"] == "abandoned", cdr
    assert cdr["answer"] is None and cdr["billsec"] in (0, 0.0, None)
    assert cdr["hangup_by"] == "caller", cdr
    seen = _events(events, cdr["call_id"])
    assert seen.count("hangup") == 1 and seen[-1] == "hangup", seen
    assert seen[0] == "incoming", seen


def test_caller_hangs_up_mid_prompt(env: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    sw, events = env
    with RtpSink() as sink:
        res = run_sipp("caller_bye.xml", sw.port, tmp_path / "sipp", service="301",
                       keys={"sink_port": str(sink.port)}, timeout=15)
        ended = time.monotonic()
        time.sleep(1.0)
    assert res.rc == 0, res.logs()
    packets = sink.pcmu()
    assert len(packets) >= 30, f"the prompt did not play: {len(packets)} packets"
    late = [p for p in packets if p.at > ended + 0.3]
    assert not late, f"{len(late)} RTP packets after the BYE was answered"
    cdr = closed_cdr(sw, res.call_id)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "caller", cdr
    assert 0.5 < cdr["billsec"] < 5, cdr
    assert _events(events, cdr["call_id"]) == ["incoming", "hangup"]


# ---------------------------------------------------------------- failing scripts


@pytest.mark.parametrize(("service", "marker"), [
    ("310", "boom-stderr-marker"), ("311", None), ("312", "slow-marker")],
    ids=["exit-1", "garbage", "deadline"])
def test_failing_script_runs_route_fallback(env: tuple[SwitchProcess, Path], tmp_path: Path,
                                            service: str, marker: str | None) -> None:
    sw, events = env
    with RtpSink() as sink:
        res = run_sipp("public_call.xml", sw.port, tmp_path / "sipp", service=service,
                       keys={"sink_port": str(sink.port), "from_user": "2001",
                             "from_name": "Trunk"}, timeout=20)
    # 200, then BYE from the switch once the fallback's `play sorry` (5.1 s) is over.
    assert res.rc == 0, res.logs()
    assert len(sink.pcmu()) >= 200, f"fallback prompt: {len(sink.pcmu())} packets"
    cdr = closed_cdr(sw, res.call_id)
    # The fallback's `hangup` is the switch's, not the script's (docs/protocol.md).
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "switch", cdr
    assert cdr["script_errors"], cdr
    assert any("incoming" in e for e in cdr["script_errors"]), cdr["script_errors"]
    entries = trace(sw, cdr["call_id"])
    first = script_runs(entries, "incoming")
    assert len(first) == 1 and first[0]["error"], first
    if marker is not None:
        assert marker in first[0]["stderr"], first[0]
    assert actions(entries)[-2:] == ["play sorry", "hangup"]
    assert _events(events, cdr["call_id"])[-1] == "hangup"


# ---------------------------------------------------------------- hostile caller IDs


def test_caller_id_is_never_run_by_a_shell(env: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    sw, events = env
    places = [tmp_path, events.parent, REPO, REPO / "scripts", Path.cwd()]
    for place in places:
        assert not (place / "pwned").exists(), place
    with RtpSink() as sink:
        res = run_sipp("public_call.xml", sw.port, tmp_path / "sipp", service="320", keys={
            "sink_port": str(sink.port),
            "from_user": "$(touch%20pwned)`touch%20pwned`",
            "from_name": "() { :;}; touch pwned; $(touch pwned)",
        }, timeout=15)
    assert res.rc == 0, res.logs()
    cdr = closed_cdr(sw, res.call_id)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "script", cdr
    assert "touch" in cdr["caller"] and "touch pwned" in cdr["caller_name"], cdr
    seen = read_lines(events / f"{cdr['call_id']}.caller")
    assert seen and all("touch" in line for line in seen), seen
    cwds = {Path(line.rsplit("|", 1)[1]) for line in seen}
    time.sleep(0.5)
    for place in [*places, *cwds, Path(sys.prefix)]:
        assert not (place / "pwned").exists(), place
    assert not list(tmp_path.parent.rglob("pwned"))


# ---------------------------------------------------------------- record branch: audio from SIPp


def _loud_frames(wav: Path, threshold: float = 300) -> tuple[float, int]:
    """(seconds, number of 20 ms frames louder than threshold RMS) of an 8 kHz s16 WAV."""
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        pcm = w.readframes(w.getnframes())
    frames = [pcm[i:i + 320] for i in range(0, len(pcm), 320)]
    return len(pcm) / 16000, sum(1 for f in frames if rms16(f) > threshold)


def test_demo_ivr_records_the_audio_sipp_plays(env: tuple[SwitchProcess, Path],
                                               tmp_path: Path) -> None:
    sw, _ = env
    work = tmp_path / "sipp"
    work.mkdir()
    prompt = REPO / "sounds" / "en" / "hours.wav"  # 3.1 s of speech, sent as PCMU from a pcap
    assert wav_to_pcap(prompt, work / "prompt.pcap") > 100
    with RtpSink() as sink:
        res = run_sipp("ivr_record.xml", sw.port, work, service="100", user="1001",
                       password=PASSWORD_1001, keys={"sink_port": str(sink.port)}, timeout=30)
    assert res.rc == 0, res.logs()
    cdr = closed_cdr(sw, res.call_id)
    assert cdr["disposition"] == "answered" and cdr["hangup_by"] == "caller", cdr
    assert len(cdr["recordings"]) == 1, cdr
    entries = trace(sw, cdr["call_id"])
    records = script_runs(entries, "record")
    assert [r["env"]["PBX_RESULT"] for r in records] == ["finishkey"], summary(entries)
    assert records[0]["env"]["PBX_RECORDING"] == cdr["recordings"][0]
    assert f"play recording:{cdr['recordings'][0]}" in actions(entries)

    # The recording holds the prompt SIPp played: about as much speech as the prompt has. (The
    # recorder keeps the packets that arrived; SIPp sends nothing between the pcap and the '#'.)
    seconds, loud = _loud_frames(sw.dir / "var" / "recordings" / cdr["recordings"][0])
    _, expected = _loud_frames(prompt)
    assert seconds >= 2.5, seconds
    assert 0.8 * expected <= loud <= 1.2 * expected + 5, (loud, expected)
