"""[originate] in pbx.toml: defaults, values, the problems it reports, every key documented;
and the pure helpers of originate and campaigns (allow-list, request checks, window, names)."""

from __future__ import annotations

from datetime import datetime
from datetime import time as clock_time
from pathlib import Path

import pytest

from pbxcore.call.originate import OriginateError, check_request, permitted
from pbxcore.cli.campaign_run import in_window, parse_window, var_name
from pbxcore.config import ConfigError, load_config
from pbxcore.config_originate import ORIGINATE_KEYS
from pbxcore.report.model import direction

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "pbx.toml").read_text()


def load(site: Path, extra: str):  # type: ignore[no-untyped-def]
    path = site / "pbx.toml"
    path.write_text(VALID + "\n" + extra)
    return load_config(path)


def test_defaults_and_values(site: Path) -> None:
    config = load(site, "")
    assert config.originate.dial_allow is None and config.originate.ring_timeout == 30
    config = load(site, '[originate]\ndial_allow = ["^\\\\+7\\\\d{10}$"]\nring_timeout = 5\n'
                        'caller_id = "74951234567"\nlanguage = "ru"\n')
    o = config.originate
    assert (o.ring_timeout, o.caller_id, o.language) == (5.0, "74951234567", "ru")
    assert permitted(config, "+79161234567") and not permitted(config, "+1555")


def test_problems(site: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(site, '[originate]\ndial_allow = ["("]\nring_timeout = 0\ncaller_id = "a b"\n'
                   'colour = 1\n')
    text = str(err.value)
    for needle in ("not a valid regular expression", "ring_timeout 0", "caller_id 'a b'",
                   "unknown key 'colour' in [originate]"):
        assert needle in text, text


def test_request_checks(site: Path) -> None:
    config = load(site, "")
    users = [u.extension for u in config.users]
    ext = users[0]
    ok = check_request(config, {"from": ext, "to": users[-1]})
    assert ok.to == users[-1] and ok.script is None
    for args, needle in (({"from": ext}, "either"),
                         ({"from": ext, "to": "+79161234567"}, "not allowed"),
                         ({"from": "x\r\ny", "to": ext}, "needs \"from\""),
                         ({"from": ext, "script": "../../etc/passwd"}, "outside"),
                         ({"from": ext, "to": ext, "vars": {"bad name": "1"}}, "variable name"),
                         ({"from": ext, "to": ext, "timeout": 0}, "timeout")):
        with pytest.raises(OriginateError, match=needle):
            check_request(config, args)


def test_every_originate_key_is_documented() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "configuration.md").read_text()
    for key in ORIGINATE_KEYS:
        assert f"| `{key}` |" in doc, key


def test_campaign_window_and_names() -> None:
    window = parse_window("09:00-20:00")
    assert window == (clock_time(9), clock_time(20))
    assert in_window(window, datetime(2026, 1, 1, 9, 0)) and not in_window(
        window, datetime(2026, 1, 1, 20, 0))
    night = parse_window("22:00-06:00")
    assert in_window(night, datetime(2026, 1, 1, 23, 0)) and in_window(
        night, datetime(2026, 1, 1, 5, 59)) and not in_window(night, datetime(2026, 1, 1, 12))
    for bad in ("9-20", "25:00-26:00", "09:00-20:61"):
        with pytest.raises(ValueError):
            parse_window(bad)
    assert [var_name(c) for c in ("Order No.", "2nd", "имя")] == ["order_no_", "_2nd", "___"]


def test_an_originated_cdr_is_outbound() -> None:
    assert direction("pbx", frozenset({"1001"}), "originate:/s/notify.sh") == "out"
    assert direction("1001", frozenset({"1001"}), "originate") == "out"
    assert direction("+7916", frozenset({"1001"}), "/s/ivr.py") == "in"
