"""[limits] and the listen addresses' lines (issue 9 items 6 and 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, Limits, ListenAddress, load_config, parse_listen

ROUTE = """
[[routes]]
match = "^100$"
script = "scripts/ivr.py"
"""


def write(site: Path, text: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_limits_table(site: Path) -> None:
    config = load_config(write(site, ROUTE))
    assert config.limits == Limits()
    assert config.limits.trusted == ("127.0.0.0/8", "::1")
    assert config.limits.tcp_idle == 32.0


def test_every_key(site: Path) -> None:
    config = load_config(write(site, """
[limits]
tcp_per_source = 8
tcp_total = 100
tcp_idle = 5
requests_per_source = 50
window = 0.5
trusted = ["10.1.2.3", "192.168.0.0/16"]
fd_reserve = 64
""" + ROUTE))
    assert config.limits == Limits(8, 100, 5.0, 50, 0.5, ("10.1.2.3", "192.168.0.0/16"), 64)


def test_zero_requests_per_source_turns_the_rate_limit_off(site: Path) -> None:
    assert load_config(write(site, "[limits]\nrequests_per_source = 0\n" + ROUTE)
                       ).limits.requests_per_source == 0


def test_bad_values_each_get_their_line(site: Path) -> None:
    text = """[limits]
tcp_per_source = 0
tcp_idle = "long"
window = 0
trusted = ["proxy.example.com", 7]
fd_reserve = -1
colour = "red"
""" + ROUTE
    with pytest.raises(ConfigError) as e:
        load_config(write(site, text))
    lines = {(line, reason.split(" ")[0]) for _, line, reason in e.value.problems}
    assert lines == {(2, "tcp_per_source"), (3, "tcp_idle"), (4, "window"), (5, "trusted"),
                     (6, "fd_reserve"), (7, "unknown")}


def test_listen_addresses_remember_their_line(site: Path) -> None:
    text = '[sip]\nrealm = "x"\nlisten = ["udp:127.0.0.1:5070", "tcp:[::1]:5071"]\n' + ROUTE
    config = load_config(write(site, text))
    assert config.sip.listen == (ListenAddress("udp", "127.0.0.1", 5070),
                                 ListenAddress("tcp", "::1", 5071))
    assert [a.line for a in config.sip.listen] == [3, 3]


def test_parse_listen() -> None:
    assert parse_listen("tcp:example.org:5060") == ListenAddress("tcp", "example.org", 5060)
    for bad in ("udp:127.0.0.1", "sctp:1.2.3.4:5060", "udp:127.0.0.1:0", "udp:h:70000", ""):
        assert parse_listen(bad) is None
