"""Store backends for the parametrized store tests.

PostgreSQL is real: each test gets its own schema (pbx_test_<random>) on the server at
PBX_TEST_PG_DSN (default postgresql://postgres@127.0.0.1/test), dropped afterwards. If the server
is down the tests fail: .ci/test starts it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_DSN = os.environ.get("PBX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1/test")


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    schema = f"pbx_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_DSN else "?"
    try:
        yield f"{PG_DSN}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def dsn_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'pbx.db'}"
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return dsn_for(request.param, tmp_path, request)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Only the persistent backends: reopening must find the same data."""
    return dsn_for(request.param, tmp_path, request)
