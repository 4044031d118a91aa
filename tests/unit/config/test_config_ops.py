"""[monitor] capacity, [metrics] listen and [log] format: defaults, values, FILE:LINE errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config

ROUTE = '\n[[routes]]\nmatch = "^100$"\nscript = "scripts/ivr.py"\n'


def load(site: Path, text: str):  # type: ignore[no-untyped-def]
    path = site / "pbx.toml"
    path.write_text(text + ROUTE)
    return load_config(path)


def test_defaults_are_off(site: Path) -> None:
    ops = load(site, "").ops
    assert (ops.capacity, ops.metrics_host, ops.metrics_port, ops.log_format) == \
        (0, None, 0, "text")


def test_values(site: Path) -> None:
    ops = load(site, '[monitor]\ncapacity = 30\n[metrics]\nlisten = "127.0.0.1:9090"\n'
                     '[log]\nformat = "json"\n').ops
    assert (ops.capacity, ops.metrics_host, ops.metrics_port, ops.log_format) == \
        (30, "127.0.0.1", 9090, "json")
    assert load(site, '[metrics]\nlisten = "[::1]:9100"\n').ops.metrics_host == "::1"


@pytest.mark.parametrize("text, line, reason", [
    ('[monitor]\ncapacity = -1\n', 2, "capacity -1 in [monitor] must be 0"),
    ('[monitor]\ncapacity = "30"\n', 2, "capacity in [monitor] must be a number"),
    ('[metrics]\nlisten = "9090"\n', 2, "listen '9090' in [metrics] must be HOST:PORT"),
    ('[metrics]\nlisten = "127.0.0.1:99999"\n', 2, "must be HOST:PORT with PORT 1-65535"),
    ('[log]\nformat = "xml"\n', 2, "format 'xml' in [log] must be one of text, json"),
    ('[monitor]\ncapacty = 3\n', 2, "did you mean 'capacity'?"),
])
def test_errors_name_the_line(site: Path, text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(site, text)
    (_path, got_line, got), = e.value.problems
    assert got_line == line and reason in got
