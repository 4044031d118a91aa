"""`say text` on a real call: the caller hears speech (audio energy at the caller's RTP socket),
the text is rendered once into recordings/tts (a second call is served from the cache, without
a render note in its trace), and a text over the cap is refused by the validator (a script
error: the route's fallback runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.switch_harness import SwitchProcess
from tests.integration.uac import Uac
from tests.peers.helpers import closed_cdr, route, running_switch, trace, write_script
from tests.peers.switching_helpers import loud_stats, pcm16

pytestmark = pytest.mark.peer

SCRIPT = """
import os
if os.environ["PBX_EVENT"] == "incoming":
    print('say text "Your order 4711 ships tomorrow. Thank you for waiting."')
    print("hangup" if os.environ["PBX_CALLED"] == "77" else "say text " + "x" * 501)
"""


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    base = tmp_path_factory.mktemp("say_text")
    script = write_script(base / "say.py", SCRIPT)
    with running_switch(base / "switch", route("^7[78]$", script, public=True)) as sw:
        yield sw


def call(sw: SwitchProcess, number: str = "77") -> tuple[int, str]:
    caller = Uac(sw.port)
    try:
        resp = caller.call(number, timeout=20)
        assert resp is not None and resp.status == 200, resp
        assert caller.wait_bye(30) is not None, "no BYE after the text"
        caller.rtp.drain(0.2)
        loud, _ = loud_stats(pcm16(caller.rtp.audio()))
    finally:
        caller.close()
    return loud, caller.call_id


def test_the_caller_hears_the_text_rendered_once(sw: SwitchProcess) -> None:
    loud, first = call(sw)
    assert loud > 50, loud  # over a second of speech (20 ms frames)
    cache = sw.dir / "var" / "recordings" / "tts"
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].endswith(".wav"), files
    loud2, second = call(sw)
    assert loud2 > 50, loud2
    assert sorted(p.name for p in cache.iterdir()) == files  # served from the cache
    notes = []
    for sip_call_id in (first, second):
        cdr = closed_cdr(sw, sip_call_id)
        entries = trace(sw, cdr["call_id"])
        notes.append([e["data"] for e in entries if e["kind"] == "note"
                      and e["data"].get("tts") == "rendered"])
    assert len(notes[0]) == 1 and notes[1] == [], json.dumps(notes)


def test_a_text_over_the_cap_is_the_scripts_fault(sw: SwitchProcess) -> None:
    _, sip_call_id = call(sw, "78")  # the route's fallback: play sorry, hangup
    cdr = closed_cdr(sw, sip_call_id)
    assert any("at most 500 characters" in err for err in cdr["script_errors"]), cdr
