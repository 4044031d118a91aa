"""pbx.toml loading: values, relative paths, and one `FILE:LINE: reason` per problem."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config, read_store_dsn

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "pbx.toml").read_text()

ROUTE = """
[[routes]]
match = "^100$"
script = "scripts/ivr.py"
"""


def write(site: Path, text: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [no for no, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def problems(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert all(p == path for p, _, _ in info.value.problems)
    return [(line, reason) for _, line, reason in info.value.problems]


def test_fixture_loads_with_every_field(site: Path) -> None:
    cfg = load_config(site / "pbx.toml")
    assert cfg.path == site / "pbx.toml"
    assert [(a.transport, a.host, a.port) for a in cfg.sip.listen] == [
        ("udp", "127.0.0.1", 5060), ("tcp", "127.0.0.1", 5060)]
    assert cfg.sip.realm == "test"
    assert (cfg.media.rtp_low, cfg.media.rtp_high, cfg.media.host) == (20000, 20099, "127.0.0.1")
    assert cfg.paths.scripts == site / "scripts"
    assert cfg.paths.recordings == site / "var" / "recordings"
    assert cfg.store_dsn == f"sqlite:///{site}/var/pbx.db"
    first, second = cfg.routes
    assert first.script == site / "scripts" / "ivr.py"
    assert (first.timeout, first.fallback, first.language, first.public) == (
        5.0, ("play sorry", "hangup"), "en", False)
    assert dict(first.env) == {"CRM_DSN": "sqlite:///var/crm.db"}
    assert (first.hangup_event, first.hold_music, first.index) == (True, "moh", 0)
    assert (second.public, second.hangup_event, second.fallback, second.hold_music) == (
        True, False, ("hangup",), None)
    assert cfg.user("1001") is not None and cfg.user("1001").name == "Alice"  # type: ignore[union-attr]
    assert cfg.user("1003") is None
    assert "secret" not in repr(cfg)


def test_route_for_is_first_search_match(site: Path) -> None:
    cfg = load_config(site / "pbx.toml")
    assert cfg.route_for("100") is cfg.routes[0]
    assert cfg.route_for("1000") is None  # ^100$ is anchored as written
    assert cfg.route_for("9100") is cfg.routes[1]
    assert cfg.route_for("") is None


def test_paths_are_relative_to_the_config_not_the_cwd(site: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = load_config(os.path.relpath(site / "pbx.toml"))
    assert cfg.routes[0].script == site / "scripts" / "ivr.py"
    assert cfg.path.is_absolute() and cfg.paths.sounds == site / "sounds"


def test_defaults_for_a_minimal_file(site: Path) -> None:
    cfg = load_config(write(site, ROUTE))
    assert [(a.transport, a.host, a.port) for a in cfg.sip.listen] == [("udp", "127.0.0.1", 5060)]
    assert cfg.sip.realm == "pbxcore"
    assert (cfg.media.rtp_low, cfg.media.rtp_high) == (20000, 20999)
    assert cfg.store_dsn == f"sqlite:///{site}/var/pbx.db"
    assert cfg.routes[0].timeout == 5.0 and cfg.routes[0].language == "en"
    assert cfg.users == ()


def test_media_host_defaults_to_first_listen_host(site: Path) -> None:
    cfg = load_config(write(site, '[sip]\nlisten = ["tcp:10.1.2.3:5070"]\n' + ROUTE))
    assert cfg.media.host == "10.1.2.3"
    cfg = load_config(write(site, '[sip]\nlisten = ["udp:[::1]:5060"]\n[media]\nhost = "::1"\n'))
    assert cfg.sip.listen[0].host == "::1"


def test_syntax_error_reports_tomllib_line(site: Path) -> None:
    text = VALID.replace('realm = "test"', 'realm = "test')
    assert problems(write(site, text)) == [
        (line_of(text, 'realm = "test'), "TOML syntax: Illegal character '\\n'")]


def test_unknown_key_suggests_and_points_at_the_line(site: Path) -> None:
    text = VALID.replace('hangup_event = false', 'scrpit = "x"\nhangup_event = false')
    text = text.replace('realm = "test"', 'realm = "test"\nlisen = []')
    assert problems(write(site, text)) == [
        (line_of(text, "lisen"), "unknown key 'lisen' in [sip]; did you mean 'listen'?"),
        (line_of(text, "scrpit"),
         "unknown key 'scrpit' in [[routes]] #2; did you mean 'script'?"),
    ]


def test_script_problems_are_warnings(site: Path) -> None:
    """A missing or non-executable script does not stop the switch (issue 9, item 4): the
    config loads, with a warning per route, and that route's calls get its fallback."""
    (site / "scripts" / "ivr.py").chmod(0o644)
    text = VALID.replace('match = "^9"\nscript = "scripts/ivr.py"',
                         'match = "^9"\nscript = "scripts/missing.sh"')
    cfg = load_config(write(site, text))
    assert len(cfg.routes) == 2 and all(p == site / "pbx.toml" for p, _, _ in cfg.warnings)
    assert [(line, reason) for _, line, reason in cfg.warnings] == [
        (line_of(text, "scripts/ivr.py"), "script scripts/ivr.py is not executable (chmod +x)"),
        (line_of(text, "scripts/missing.sh"), "script scripts/missing.sh does not exist"),
    ]


@pytest.mark.parametrize("listen", ['"udp:127.0.0.1"', '"sctp:127.0.0.1:5060"',
                                    '"udp:127.0.0.1:0"', '"tcp:127.0.0.1:65536"', "5060"])
def test_bad_listen_address(site: Path, listen: str) -> None:
    text = f"[sip]\nlisten = [\n  {listen},\n]\n" + ROUTE
    [(line, reason)] = problems(write(site, text))
    assert line == 2 and reason.startswith(f"listen address {listen.strip(chr(34))!r}"
                                           if listen != "5060" else "listen address 5060")


@pytest.mark.parametrize("ports", ["20001-20999", "20000-20000", "30000-20000", "80-2000",
                                   "20000-70000", "20000", "a-b"])
def test_bad_rtp_ports(site: Path, ports: str) -> None:
    text = f'[media]\nhost = "127.0.0.1"\nrtp_ports = "{ports}"\n' + ROUTE
    assert problems(write(site, text)) == [
        (3, f"rtp_ports {ports!r} must be 'LOW-HIGH' with LOW even, 1024 <= LOW < HIGH <= 65535")]


def test_user_problems_are_all_collected(site: Path) -> None:
    text = ROUTE + """
[[users]]
extension = "1001"
password = "a"

[[users]]
extension = "1001"
password = ""

[[users]]
extension = 1002
password = "b"
"""
    assert problems(write(site, text)) == [
        (line_of(text, 'extension = "1001"', 2), "duplicate extension '1001' in [[users]] #2"),
        (line_of(text, 'password = ""'), "password in [[users]] #2 must be a non-empty string"),
        (line_of(text, "extension = 1002"),
         "extension in [[users]] #3 must be a string of letters, digits or _.+- "
         "(quote numbers: extension = \"1001\"), not 1002"),
    ]
    assert str(ConfigError([(site / "pbx.toml", 7, "x"), (site / "pbx.toml", 0, "y")])) == (
        f"{site}/pbx.toml:7: x\n{site}/pbx.toml: y")


def test_route_value_problems(site: Path) -> None:
    text = ROUTE.replace('"^100$"', '"^(100"') + """timeout = 0.05
language = "de"
public = "yes"
env = { PBX_SECRET = "x", GOOD = "y" }
hold_music = "../../etc/passwd"
"""
    got = problems(write(site, text))
    assert [line for line, _ in got] == [line_of(text, k) for k in (
        "match", "timeout", "language", "env", "hold_music", "public")]
    assert got[0][1].startswith("match '^(100' is not a valid regular expression: missing )")
    assert got[1][1] == "timeout 0.05 in [[routes]] #1 must be 0.1..60 seconds"
    assert got[2][1] == f"language 'de': no directory {site}/sounds/de"
    assert got[3][1].startswith("env PBX_SECRET in [[routes]] #1")
    assert got[4][1] == "hold_music '../../etc/passwd' must name a sound under sounds/"
    assert got[5][1] == "public in [[routes]] #1 must be true or false"


def test_missing_match_and_boolean_timeout(site: Path) -> None:
    text = '[[routes]]\nscript = "scripts/ivr.py"\ntimeout = true\n'
    assert problems(write(site, text)) == [
        (1, '[[routes]] #1 needs match = "REGEX" (a string)'),
        (3, "timeout in [[routes]] #1 must be a number"),
    ]


def test_fallback_lines_are_parsed_with_the_action_grammar(site: Path) -> None:
    text = VALID.replace('fallback = ["play sorry", "hangup"]',
                         'fallback = ["play sorry", "dance wildly"]')
    [(line, reason)] = problems(write(site, text))
    assert line == line_of(text, "fallback")
    assert reason.startswith("fallback 'dance wildly' in [[routes]] #1: ")


@pytest.mark.parametrize("dsn", ["mysql://x/y", "sqlite:///", "sqlite:/relative.db"])
def test_bad_store_dsn(site: Path, dsn: str) -> None:
    text = ROUTE + f'\n[store]\ndsn = "{dsn}"\n'
    [(line, reason)] = problems(write(site, text))
    assert line == line_of(text, "dsn =") and "dsn" in reason


def test_store_dsn_forms(site: Path, tmp_path: Path) -> None:
    absolute = load_config(write(site, f'[store]\ndsn = "sqlite:///{tmp_path}/x.db"\n'))
    assert absolute.store_dsn == f"sqlite:///{tmp_path}/x.db"
    pg = load_config(write(site, '[store]\ndsn = "postgresql://pbx@db.example/pbx"\n'))
    assert pg.store_dsn == "postgresql://pbx@db.example/pbx"


def test_unreadable_file_and_wrong_table_types(site: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(site / "nope.toml")
    assert info.value.problems[0][:2] == (site / "nope.toml", 0)
    assert str(info.value).startswith(f"{site}/nope.toml: cannot read:")
    text = 'sip = "udp"\nroutes = 3\n'
    assert problems(write(site, text)) == [
        (1, "'sip' must be a table ([sip])"),
        (2, "routes must be an array of tables ([[routes]])"),
    ]


def test_store_dsn_is_readable_while_routes_are_broken(site: Path) -> None:
    path = site / "pbx.toml"
    path.write_text(path.read_text().replace("[[routes]]", "[[routes]]\nscrpit = 1", 1))
    with pytest.raises(ConfigError):
        load_config(path)
    assert read_store_dsn(path) == f"sqlite:///{site}/var/pbx.db"


def test_hold_music_must_exist_like_the_player_looks_it_up(site: Path) -> None:
    text = ROUTE + 'hold_music = "jazz"\n'
    assert problems(write(site, text)) == [
        (5, f"hold_music 'jazz': no {site}/sounds/en/jazz.wav or {site}/sounds/jazz.wav")]
    shutil.copy(site / "sounds" / "en" / "moh.wav", site / "sounds" / "jazz.wav")
    assert load_config(site / "pbx.toml").routes[0].hold_music == "jazz"


def test_route_name_defaults_to_its_match_and_is_checked(site: Path) -> None:
    cfg = load_config(site / "pbx.toml")
    assert cfg.routes[0].name == cfg.routes[0].match.pattern  # PBX_ROUTE as before: "^100$"
    named = ROUTE.replace('match = "^100$"', 'name = "sales"\nmatch = "^100$"')
    assert load_config(write(site, named)).routes[0].name == "sales"
    twice = named + named.replace('"^100$"', '"^101$"')
    assert problems(write(site, twice)) == [(line_of(twice, "name", 2),
                                             "route name 'sales' is used twice")]
    bad = ROUTE.replace('match = "^100$"', 'name = "a b"\nmatch = "^100$"')
    assert problems(write(site, bad)) == [
        (line_of(bad, "name"), "name 'a b' in [[routes]] #1 must be 1..64 letters, digits, _ . -")]


def test_node_id_and_scripts_user(site: Path) -> None:
    me = pwd.getpwuid(os.geteuid())  # always allowed: running scripts as ourselves
    cfg = load_config(write(site, f'[node]\nid = "pbx-a.1"\n[scripts]\nuser = "{me.pw_name}"\n'
                            + ROUTE))
    assert cfg.node == "pbx-a.1"
    assert (cfg.scripts.user, cfg.scripts.uid, cfg.scripts.gid) == (me.pw_name, me.pw_uid,
                                                                    me.pw_gid)
    default = load_config(write(site, ROUTE))
    assert default.node and default.scripts.user is None  # host name; run as the switch


def test_scripts_user_must_exist_and_node_id_be_a_name(site: Path) -> None:
    text = '[node]\nid = "a b"\n[scripts]\nuser = "no-such-user-pbx"\n' + ROUTE
    assert problems(write(site, text)) == [
        (2, "id 'a b' in [node] must be 1-64 of A-Z a-z 0-9 _ . -"),
        (4, "user 'no-such-user-pbx' in [scripts] does not exist on this system"),
    ]
