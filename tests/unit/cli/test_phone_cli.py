"""`pbx phone` refuses bad arguments before any phone starts (exit 2, one reason), and takes
its server from the config's first UDP listen address."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pbxcore.cli.main import main
from pbxcore.cli.phone_cmd import _server


@pytest.mark.parametrize("args, reason", [
    (["--server", "a b:1"], "--server 'a b:1' must be HOST[:PORT]"),
    (["--server", "host:70000"], "must be HOST[:PORT]"),
    (["--server", "127.0.0.1:5060", "--digits", "1x"], "--digits '1x': only 0-9 * # A-D"),
])
def test_usage_errors(args: list[str], reason: str) -> None:
    got = CliRunner().invoke(main, ["phone", "call", "100", "--user", "1001", "--password",
                                    "pw", *args])
    assert got.exit_code == 2 and reason in got.output


def test_number_is_checked() -> None:
    got = CliRunner().invoke(main, ["phone", "call", "1;rm", "--user", "1", "--password", "p",
                                    "--server", "127.0.0.1"])
    assert got.exit_code == 2 and "letters, digits" in got.output


def test_server_from_config(tmp_path: Path) -> None:
    (tmp_path / "pbx.toml").write_text(
        '[sip]\nlisten = ["tcp:127.0.0.1:5070", "udp:0.0.0.0:5080"]\n'
        '[media]\nhost = "192.0.2.1"\n')
    assert _server(None, tmp_path / "pbx.toml") == ("127.0.0.1", 5080)
    assert _server("10.0.0.1", tmp_path / "pbx.toml") == ("10.0.0.1", 5060)
    got = CliRunner().invoke(main, ["phone", "call", "100", "--user", "1", "--password", "p",
                                    "--config", str(tmp_path / "missing.toml")])
    assert got.exit_code == 2 and "no --server, and the config cannot be read" in got.output
