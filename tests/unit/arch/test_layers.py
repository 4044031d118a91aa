"""The layering of DESIGN.md, enforced: imports go downward only, pure layers do no I/O,
click and rich live only in the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3] / "pbxcore"

# rank: a module may import modules of its own rank or lower.
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (3, ("pbxcore.cli", "pbxcore.server", "pbxcore.testing", "pbxcore.__main__",
         "pbxcore.metrics", "pbxcore.phone", "pbxcore.web")),
    (2, ("pbxcore.verbs", "pbxcore.acd", "pbxcore.call", "pbxcore.control.handlers")),
    (1, ("pbxcore.transport", "pbxcore.media", "pbxcore.store", "pbxcore.script.runner",
         "pbxcore.script.transports", "pbxcore.script.worker", "pbxcore.script.webhook",
         "pbxcore.script.contain",
         "pbxcore.config", "pbxcore.config_queues", "pbxcore.config_ops", "pbxcore.config_web",
         "pbxcore.config_originate", "pbxcore.config_voicemail", "pbxcore.config_watch",
         "pbxcore.config_cluster", "pbxcore.config_checker", "pbxcore.config_routes",
         "pbxcore.config_trunks",
         "pbxcore.control", "pbxcore.logs", "pbxcore.report.load")),
    (0, ("pbxcore.sip", "pbxcore.rtp", "pbxcore.script", "pbxcore.acd.spec",
         "pbxcore.acd.model", "pbxcore.control.protocol", "pbxcore.report")),
]
PURE_FORBIDDEN = {"asyncio", "socket", "subprocess", "sqlite3", "psycopg", "threading",
                  "selectors", "multiprocessing"}
EDGE_ONLY = {"click", "rich"}


def rank(module: str) -> int | None:
    """The rank of the longest prefix that names `module` (so pbxcore.acd.model can be pure
    while the rest of pbxcore.acd is a service)."""
    best: tuple[int, int] | None = None  # (prefix length, rank)
    for r, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[0]):
                best = (len(p), r)
    return None if best is None else best[1]


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


ALL = modules()


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m, _ in ALL if m != "pbxcore" and rank(m) is None]
    assert unplaced == []


@pytest.mark.parametrize(("module", "path"), ALL, ids=[m for m, _ in ALL])
def test_imports_go_downward(module: str, path: Path) -> None:
    mine = rank(module)
    if mine is None:
        return
    for imported in imports(path):
        top = imported.split(".")[0]
        if imported.startswith("pbxcore."):
            theirs = rank(imported)
            assert theirs is not None and theirs <= mine, f"{module} imports {imported}"
        if mine == 0:
            assert top not in PURE_FORBIDDEN, f"pure module {module} imports {imported}"
        if top in EDGE_ONLY:
            assert module.startswith("pbxcore.cli"), f"{module} imports {imported}"


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from pbxcore.call.switch import Switch\nimport asyncio\n")
    found = imports(bad)
    assert "pbxcore.call.switch" in found and "asyncio" in found
    assert rank("pbxcore.call.switch") == 2 > rank("pbxcore.sip.message") == 0  # type: ignore[operator]
    assert rank("pbxcore.acd.service") == 2 > rank("pbxcore.acd.model.queue") == 0  # type: ignore[operator]
