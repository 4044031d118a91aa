"""Every RFC 4475 torture message against a running `pbx run`, over UDP and TCP.

Expected answers follow tests/unit/sip/captures/rfc4475/EXPECTED.md with pbxcore's role (registrar +
UAS endpoint, every non-public request challenged).  After each message the switch must still
answer OPTIONS (invariant 1); responses get no reply at all (invariant 2).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    options_ping,
    sip_replies,
    start_switch,
    write_config,
)

# The corpus ships with the repository (a clone has nothing beside it).
CONFORMANCE = REPO / "tests" / "unit" / "sip" / "captures" / "rfc4475"
TABLE = {m["file"]: m for m in json.loads((CONFORMANCE / "EXPECTED.json").read_text())["messages"]}

# The status pbxcore answers with over UDP; a set means any of them is right (the RFC allows both).
# wsinv carries a To tag, so it is a mid-dialog request for a dialog we do not know: 481 (§12.2.2).
EXPECTED_UDP: dict[str, set[int] | None] = {
    "wsinv.sip": {401, 481}, "intmeth.sip": {501}, "esc01.sip": {401}, "escnull.sip": {401},
    "esc02.sip": {501}, "lwsdisp.sip": {200}, "longreq.sip": {401}, "dblreq.sip": {401},
    "semiuri.sip": {200}, "transports.sip": {200}, "mpart01.sip": {405},
    "unreason.sip": None, "noreason.sip": None,
    "badinv01.sip": {400}, "clerr.sip": {400}, "ncl.sip": {400}, "scalar02.sip": {400},
    "scalarlg.sip": None, "quotbal.sip": {400}, "ltgtruri.sip": {400}, "lwsruri.sip": {400},
    "lwsstart.sip": {400, 401}, "trws.sip": {400, 200}, "escruri.sip": {400, 401},
    "baddate.sip": {401}, "regbadct.sip": {400, 401}, "badaspec.sip": {400, 200},
    "baddn.sip": {400, 200}, "badvers.sip": {505}, "mismatch01.sip": {400},
    "mismatch02.sip": {400, 501}, "bigcode.sip": None, "badbranch.sip": {400, 200},
    "insuf.sip": {400}, "unkscm.sip": {416}, "novelsc.sip": {416}, "unksm2.sip": {400},
    "bext01.sip": {420}, "invut.sip": {415}, "regaut01.sip": {401}, "multi01.sip": {400},
    "mcl01.sip": {400}, "bcast.sip": None, "zeromf.sip": {200}, "cparam01.sip": {401},
    "cparam02.sip": {401}, "regescrt.sip": {401}, "sdp01.sip": {406}, "inv2543.sip": {400, 401},
}


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> SwitchProcess:
    dir = tmp_path_factory.mktemp("rfc4475")
    port = free_port()
    config = write_config(dir, port=port, routes=f"""
        [[routes]]
        match = "."
        script = "{REPO / 'scripts' / 'ivr.sh'}"
        fallback = ["hangup"]
        """)
    sw = start_switch(dir, config, port)
    yield sw
    sw.stop()


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_table_covers_every_file() -> None:
    assert set(EXPECTED_UDP) == set(TABLE) == {p.name for p in CONFORMANCE.glob("*.sip")}


@pytest.mark.parametrize("name", sorted(EXPECTED_UDP))
def test_udp(switch: SwitchProcess, name: str) -> None:
    data = (CONFORMANCE / name).read_bytes()
    expected = EXPECTED_UDP[name]
    replies = sip_replies(switch.port, data, timeout=1.0 if expected is None else 3.0)
    finals = [r for r in replies if not r.startswith(b"SIP/2.0 1")]
    if expected is None:
        assert replies == [], f"{name}: a response must get no reply, got {replies[:1]}"
    else:
        assert finals, f"{name}: no final response (expected {expected})"
        assert status_of(finals[0]) in expected, finals[0][:200]
        assert b"255.255.255.255" not in finals[0] or name == "bcast.sip"
    assert options_ping(switch.port, timeout=1.0), f"switch stopped answering after {name}"


@pytest.mark.parametrize("name", sorted(EXPECTED_UDP))
def test_tcp(switch: SwitchProcess, name: str) -> None:
    data = (CONFORMANCE / name).read_bytes()
    expected = EXPECTED_UDP[name]
    replies = sip_replies(switch.port, data, timeout=1.0, transport="tcp")
    finals = [r for r in replies if not r.startswith(b"SIP/2.0 1")]
    if expected is None:
        assert finals == []
    elif name == "clerr.sip":
        assert finals == []  # TCP: Content-Length says more is coming; we wait (bounded), no 400
    elif finals:
        code = status_of(finals[0])
        assert code in expected | {400}, finals[0][:200]
        if TABLE[name]["kind"] == "valid":
            assert code != 400
    else:
        pytest.fail(f"{name}: no answer over TCP (expected {expected})")
    assert options_ping(switch.port, timeout=1.0, transport="tcp")
