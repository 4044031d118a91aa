"""[[trunks]] in pbx.toml: values, defaults, outbound number matching, FILE:LINE problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "pbx.toml").read_text()

TRUNKS = """
[[trunks]]
name = "provider"
host = "sip.example.com"
username = "4420700"
password = "p4ss"
match = "^0\\\\d{7,}$"
prefix = "9"

[[trunks]]
name = "backup"
host = "[2001:db8::1]"
port = 5080
transport = "tcp"
register = false
domain = "voip.example.net"
from_user = "switchboard"
match = "^00"
"""


def write(site: Path, text: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [(line, reason) for _, line, reason in info.value.problems]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    return [no for no, line in enumerate(text.splitlines(), 1) if needle in line][nth - 1]


def test_trunks_load_with_defaults(site: Path) -> None:
    cfg = load_config(write(site, VALID + TRUNKS))
    provider, backup = cfg.trunks
    assert (provider.name, provider.host, provider.port, provider.transport) == (
        "provider", "sip.example.com", 5060, "udp")
    assert (provider.username, provider.password, provider.register, provider.expires) == (
        "4420700", "p4ss", True, 300)  # register defaults to true when a username is given
    assert (provider.domain, provider.from_user, provider.prefix, provider.index) == (
        "sip.example.com", "4420700", "9", 0)
    assert (backup.host, backup.port, backup.transport, backup.register) == (
        "2001:db8::1", 5080, "tcp", False)
    assert (backup.username, backup.password, backup.domain, backup.from_user) == (
        None, None, "voip.example.net", "switchboard")
    assert "p4ss" not in repr(cfg)
    assert cfg.trunk("backup") is backup and cfg.trunk("nope") is None


def test_trunk_for_number_is_the_first_match(site: Path) -> None:
    cfg = load_config(write(site, VALID + TRUNKS))
    assert cfg.trunk_for_number("02079460000") is cfg.trunks[0]
    assert cfg.trunk_for_number("0044207946") is cfg.trunks[0]  # first wins
    assert cfg.trunk_for_number("00") is cfg.trunks[1]
    assert cfg.trunk_for_number("1001") is None


def test_no_trunks_is_fine(site: Path) -> None:
    cfg = load_config(write(site, VALID))
    assert cfg.trunks == () and cfg.trunk_for_number("0207946000") is None


def test_a_trunk_without_match_carries_no_outbound_calls(site: Path) -> None:
    cfg = load_config(write(site, VALID + '[[trunks]]\nname = "in"\nhost = "192.0.2.7"\n'))
    assert cfg.trunks[0].match is None and cfg.trunks[0].register is False
    assert cfg.trunk_for_number("0207946000") is None


def test_every_trunk_problem_is_reported_on_its_line(site: Path) -> None:
    text = VALID + """
[[trunks]]
name = "bad name"
host = "sip example"
port = 70000
transport = "tls"
username = "a b"
password = ""
expires = 30
match = "(("
prefix = "9x"
domain = "a/b"
from_user = "x y"
colour = "red"

[[trunks]]
name = "p"
host = "sip.example.com"
register = true

[[trunks]]
name = "p"
host = "sip.example.com"
expires = true
"""
    got = problems(write(site, text))
    first = line_of(text, "[[trunks]]")
    assert got == [
        (line_of(text, "colour"), "unknown key 'colour' in [[trunks]] #1"),
        (line_of(text, 'name = "bad name"'),
         '[[trunks]] #1 needs name = "NAME" (letters, digits, _ or -)'),
        (line_of(text, "sip example"),
         "host 'sip example' in [[trunks]] #1 must be a host name or IP address"),
        (line_of(text, "a/b"), "domain 'a/b' in [[trunks]] #1 must be a host name"),
        (line_of(text, "70000"), "port 70000 in [[trunks]] #1 must be 1-65535"),
        (line_of(text, "tls"), "transport 'tls' in [[trunks]] #1 must be udp or tcp"),
        (line_of(text, "a b"), "username 'a b' in [[trunks]] #1 must be a SIP user name "
                               "(no spaces, quotes, <>@:;,?)"),
        (line_of(text, "x y"), "from_user 'x y' in [[trunks]] #1 must be a SIP user name "
                               "(no spaces, quotes, <>@:;,?)"),
        (line_of(text, 'password = ""'), "password in [[trunks]] #1 must be a non-empty line"),
        (line_of(text, "expires = 30"), "expires 30 in [[trunks]] #1 must be 60..86400 seconds"),
        (line_of(text, "(("), "match '((' is not a valid regular expression: "
                              "missing ), unterminated subpattern at position 1"),
        (line_of(text, "9x"), "prefix '9x' in [[trunks]] #1 may hold only 0-9 + * #"),
        (line_of(text, "register = true"),
         "register = true in [[trunks]] #2 needs username and password"),
        (line_of(text, "expires = true"), "expires in [[trunks]] #3 must be a number"),
    ]
    assert first < got[0][0]


def test_duplicate_trunk_names(site: Path) -> None:
    one = '[[trunks]]\nname = "p"\nhost = "192.0.2.1"\n'
    text = VALID + one + one
    assert problems(write(site, text)) == [
        (line_of(text, 'name = "p"', 2), "duplicate trunk name 'p' in [[trunks]] #2")]


def test_trunks_must_be_an_array_of_tables(site: Path) -> None:
    text = VALID.replace("[sip]", 'trunks = "x"\n[sip]')
    assert problems(write(site, text)) == [
        (line_of(text, 'trunks = "x"'), "trunks must be an array of tables ([[trunks]])")]
