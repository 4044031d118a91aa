"""Events: the PBX_* environment (sanitised) and the stdin JSON (raw)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxcore.script.events import (
    BASE_ENV,
    HANGUP_RESULTS,
    Event,
    HistoryEntry,
    event_dict,
    event_env,
    event_from_dict,
    event_json,
)
from pbxcore.script.sanitize import ENV_VALUE_MAX, env_name, env_value

EV = Event(
    "gather", "c-42", caller="1000", caller_name="Ann", called="2000", route="sales",
    language="fr", vars={"customer_id": "7", "Tier-Level": "gold"},
    headers={"User-Agent": "pyVoIP"}, result="ok", digits="12",
    extra={"attempt": "2"}, history=(HistoryEntry("incoming"),),
)


def test_env_names_are_the_contract() -> None:
    env = event_env(EV, {"CRM_URL": "http://crm.invalid"})
    assert env == {
        **BASE_ENV,
        "CRM_URL": "http://crm.invalid",
        "PBX_PROTOCOL": "1", "PBX_EVENT": "gather", "PBX_CALL_ID": "c-42",
        "PBX_CALLER": "1000", "PBX_CALLER_NAME": "Ann", "PBX_CALLED": "2000",
        "PBX_ROUTE": "sales", "PBX_LANGUAGE": "fr", "PBX_DIGITS": "12", "PBX_RESULT": "ok",
        "PBX_RECORDING": "", "PBX_ATTEMPT": "2",
        "PBX_VAR_CUSTOMER_ID": "7", "PBX_VAR_TIER_LEVEL": "gold",
    }
    assert BASE_ENV == {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                        "HOME": "/nonexistent"}


def test_route_env_adds_and_may_set_path_but_not_pbx_fields() -> None:
    env = event_env(EV, {"PATH": "/opt/node/bin:/usr/bin", "PBX_CALLER": "forged"})
    assert env["PATH"] == "/opt/node/bin:/usr/bin"
    assert env["PBX_CALLER"] == "1000"


def test_json_is_one_line_with_every_field() -> None:
    raw = event_json(EV)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert json.loads(raw) == {
        "protocol": 1, "event": "gather", "call_id": "c-42", "caller": "1000",
        "caller_name": "Ann", "called": "2000", "route": "sales", "language": "fr",
        "digits": "12", "result": "ok", "recording": "", "attempt": "2",
        "vars": {"customer_id": "7", "Tier-Level": "gold"},
        "headers": {"User-Agent": "pyVoIP"},
        "history": [{"event": "incoming", "result": ""}],
    }


@pytest.mark.parametrize(("raw", "clean"), [
    ("1000\nhangup", "1000hangup"),
    ("1000\r\nanswer", "1000answer"),
    ("a\x00b", "ab"),
    ("\x1b[31mred\x1b[0m", "[31mred[0m"),
    ("del\x7f c1\x85 \u2028ls\u2029ps", "del c1 lsps"),
    ("\u202eevil bidi", "evil bidi"),
    ("$(touch pwned)", "$(touch pwned)"),  # harmless in a variable: nothing evaluates it
    ("Jos\u00e9 M\u00fcller\u00a0\u4e2d", "Jos\u00e9 M\u00fcller\u00a0\u4e2d"),
    ("x" * 1000, "x" * ENV_VALUE_MAX),
    ("\udcff lone surrogate", " lone surrogate"),
])
def test_caller_text_is_sanitised_for_env_and_raw_in_json(raw: str, clean: str) -> None:
    ev = Event("incoming", "c1", caller=raw, caller_name=raw, vars={"v": raw})
    env = event_env(ev, {})
    assert env["PBX_CALLER"] == env["PBX_CALLER_NAME"] == env["PBX_VAR_V"] == clean
    doc = json.loads(event_json(ev))
    assert doc["caller"] == doc["caller_name"] == doc["vars"]["v"] == raw


@given(st.text())
def test_env_value_property(text: str) -> None:
    clean = env_value(text)
    assert len(clean) <= ENV_VALUE_MAX
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in clean)
    clean.encode("utf-8")  # never raises: no lone surrogates left
    assert env_value(clean) == clean


def test_env_name() -> None:
    assert env_name("customer_id") == "CUSTOMER_ID"
    assert env_name("a-b.c d=\n") == "A_B_C_D__"


def test_extra_keys_cannot_shadow_fields() -> None:
    for bad in ("caller", "vars", "Upper", "has space", ""):
        with pytest.raises(ValueError):
            Event("incoming", "c1", extra={bad: "x"})


def test_from_dict_round_trip_and_errors() -> None:
    assert event_from_dict(json.loads(event_json(EV))) == EV
    assert event_from_dict(event_dict(Event("hangup", "c2"))) == Event("hangup", "c2")
    for bad in ({"protocol": 2, "event": "incoming"}, {"event": ""},
                {"event": "incoming", "caller": 5}, {"event": "incoming", "vars": []},
                {"event": "incoming", "history": {}}):
        with pytest.raises(ValueError):
            event_from_dict(bad)


def test_hangup_results_are_the_documented_ones() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `hangup` |"))
    documented = re.findall(r"`([a-z_]+)` \(", row.split("`PBX_RESULT`:", 1)[1])
    assert documented == list(HANGUP_RESULTS)
