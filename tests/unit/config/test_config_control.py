"""[paths] control: the control socket's path, its default, its limit, and how the CLI finds
it while the rest of pbx.toml is broken; and what `pbx reload` says changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config, read_control_path
from pbxcore.config_watch import describe_changes

FIXTURES = Path(__file__).parent / "fixtures"
ROUTE = '\n[[routes]]\nmatch = "^100$"\nscript = "scripts/ivr.py"\n'


def write(site: Path, text: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(text)
    return path


def test_default_is_beside_the_store(site: Path) -> None:
    config = load_config(write(site, ROUTE))
    assert config.paths.control == site / "var" / "pbx.sock"
    assert read_control_path(site / "pbx.toml") == site / "var" / "pbx.sock"


def test_relative_and_absolute_paths(site: Path, tmp_path: Path) -> None:
    write(site, '[paths]\ncontrol = "run/ctl.sock"\n' + ROUTE)
    assert load_config(site / "pbx.toml").paths.control == site / "run" / "ctl.sock"
    write(site, f'[paths]\ncontrol = "{tmp_path}/x.sock"\n' + ROUTE)
    assert read_control_path(site / "pbx.toml") == tmp_path / "x.sock"


def test_a_path_too_long_for_a_unix_socket_is_refused_with_its_line(site: Path) -> None:
    text = '[paths]\ncontrol = "/' + "d" * 120 + '/pbx.sock"\n' + ROUTE
    with pytest.raises(ConfigError) as info:
        load_config(write(site, text))
    [(_, line, reason)] = info.value.problems
    assert line == 2 and "longer than 107 bytes" in reason


def test_the_socket_is_found_while_the_rest_is_broken(site: Path) -> None:
    # `pbx reload` after a bad edit must still reach the running switch to report it.
    write(site, '[paths]\ncontrol = "ctl.sock"\n[[routes]]\nmatch = "^(1"\nscript = "nope"\n')
    with pytest.raises(ConfigError):
        load_config(site / "pbx.toml")
    assert read_control_path(site / "pbx.toml") == site / "ctl.sock"
    write(site, '[paths]\ncontrol = "ctl.sock"\n[[routes]\nmatch = = "^1$"\n')  # TOML syntax
    assert read_control_path(site / "pbx.toml") == site / "ctl.sock"
    write(site, '[sip\n')
    assert read_control_path(site / "pbx.toml") == site / "var" / "pbx.sock"


def test_describe_changes_names_what_changed_without_secrets(site: Path) -> None:
    base = (FIXTURES / "pbx.toml").read_text()
    old = load_config(write(site, base))
    changed = base.replace("timeout = 5", "timeout = 9", 1).replace(
        'password = "secret"', 'password = "other"', 1)
    assert changed != base
    new = load_config(write(site, changed + '\n[[users]]\nextension = "1009"\npassword = "x"\n'))
    lines = describe_changes(old, new)
    assert "user 1009 added" in lines
    assert any(line.startswith("route ^100$: timeout 5.0 -> 9.0") for line in lines)
    assert "user 1001: password changed" in lines
    assert not any("secret" in line or "other" in line for line in lines)
    assert describe_changes(old, old) == []


def test_describe_changes_sees_removed_and_reordered_routes(site: Path) -> None:
    two = ROUTE + '\n[[routes]]\nmatch = "^200$"\nscript = "scripts/ivr.py"\n'
    old = load_config(write(site, two))
    swapped = load_config(write(site, '\n[[routes]]\nmatch = "^200$"\nscript = "scripts/ivr.py"\n'
                                + ROUTE))
    assert describe_changes(old, swapped) == ["routes reordered"]
    one = load_config(write(site, ROUTE))
    assert describe_changes(old, one) == ["route ^200$ removed"]
