"""The config tests' site: a copy of fixtures/ (pbx.toml, an executable script, sounds/en) in
tmp_path, which each test rewrites pbx.toml in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "site")
    return tmp_path / "site"
