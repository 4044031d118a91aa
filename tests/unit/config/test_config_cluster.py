"""[cluster]: a node that shares its store with others. Refused on SQLite (an SQLite file is one
machine's), the node's own id must be listed, FILE:LINE errors; `pbx check` says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config

ROUTE = '\n[[routes]]\nmatch = "^100$"\nscript = "scripts/ivr.py"\n'
PG = '[store]\ndsn = "postgresql://pbx@db.example/pbx"\n'


def write(site: Path, text: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(text + ROUTE)
    return path


def test_alone_by_default(site: Path) -> None:
    assert load_config(write(site, "")).cluster is None


def test_nodes_on_postgresql(site: Path) -> None:
    config = load_config(write(site, PG + '[node]\nid = "a"\n[cluster]\nnodes = ["a", "b"]\n'))
    assert config.cluster is not None and config.cluster.nodes == ("a", "b")
    assert config.cluster.secret == ""
    config = load_config(write(site, PG + '[cluster]\nsecret = "0123456789abcdef"\n'))
    assert config.cluster is not None and config.cluster.secret == "0123456789abcdef"
    assert "0123456789abcdef" not in repr(config.cluster)  # never in a log line


@pytest.mark.parametrize("text, line, reason", [
    ('[node]\nid = "a"\n[cluster]\nnodes = ["a", "b"]\n', 3, "needs a shared PostgreSQL store"),
    ('[store]\ndsn = "sqlite:///var/pbx.db"\n[cluster]\n', 3, "sqlite://"),
    (PG + '[node]\nid = "c"\n[cluster]\nnodes = ["a", "b"]\n', 6, "'c' is not in [cluster] nodes"),
    (PG + '[node]\nid = "a"\n[cluster]\nnodes = ["a", "a"]\n', 6, "listed twice"),
    (PG + '[node]\nid = "a"\n[cluster]\nnodes = ["a", "b c"]\n', 6, "must be node ids"),
    (PG + '[cluster]\nnode = ["a"]\n', 4, "did you mean 'nodes'?"),
    (PG + '[cluster]\nsecret = "short"\n', 4, "at least 16 characters"),
])
def test_errors_name_the_line(site: Path, text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(site, text))
    (_path, got_line, got), = e.value.problems
    assert got_line == line and reason in got, (got_line, got)


def test_pbx_check_says_a_cluster_needs_postgresql(site: Path) -> None:
    path = write(site, '[cluster]\nnodes = []\n')
    out = subprocess.run([sys.executable, "-m", "pbxcore", "check", "--config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "needs a shared PostgreSQL store" in out.stdout + out.stderr


def test_the_shipped_node_example_checks() -> None:
    example = Path(__file__).parents[3] / "examples" / "cluster" / "pbx-node.toml"
    config = load_config(example)
    assert config.cluster is not None and config.node in config.cluster.nodes
    assert config.store_dsn.startswith("postgresql://")
