"""The `pbx` CLI in-process (click's CliRunner) against a temp config and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from pbxcore.cli.common import parse_since, redact
from pbxcore.cli.main import main
from pbxcore.config import Config
from pbxcore.store import CdrEnd, CdrStart, TraceEntry, open_store

FIXTURES = Path(__file__).parents[1] / "config" / "fixtures"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "site")
    return tmp_path / "site"


def pbx(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "250", **(env or {})})


async def _fill(site: Path) -> None:
    store = await open_store("sqlite:///var/pbx.db", base_dir=site)
    try:
        for i, (caller, name) in enumerate([("1001", "Alice"), ("1002", "[bold]Mallory[/bold]"),
                                            ("1003", "")]):
            call_id = f"CALL{i}"
            await store.cdr_open(CdrStart(call_id, "same@host", NOW - timedelta(hours=3 - i),
                                          caller, "100", name, "scripts/ivr.py"))
            await store.cdr_update(call_id, answer=NOW - timedelta(hours=3 - i, seconds=-1))
            await store.cdr_close(call_id, CdrEnd(NOW - timedelta(hours=3 - i, seconds=-31),
                                                  "answered", "caller", "BYE", 200))
        await store.trace_append("CALL2", TraceEntry(1, NOW, "event", {"event": "incoming"}))
        await store.trace_append("CALL2", TraceEntry(2, NOW + timedelta(milliseconds=40), "script", {
            "event": "incoming", "env": {"PBX_CALLER": "1003", "PBX_EVENT": "incoming"},
            "stdin": '{"event": "incoming", "caller": "1003"}', "stdout": "answer\nplay welcome\n",
            "stderr": "looked up [red]CRM[/red]", "exit": 0, "duration": 0.031}))
        await store.trace_append("CALL2", TraceEntry(3, NOW + timedelta(seconds=1), "error",
                                                     {"error": "script timeout after 5 s"}))
    finally:
        await store.close()


@pytest.fixture
def filled(site: Path) -> Path:
    asyncio.run(_fill(site))
    return site / "pbx.toml"


def test_check_ok(site: Path) -> None:
    result = pbx("check", "--config", site / "pbx.toml")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, "config OK: 2 routes, 2 users\n", "")


def test_check_prints_every_problem_and_fails(site: Path) -> None:
    path = site / "pbx.toml"
    text = path.read_text().replace('realm = "test"', 'realm = "test"\nlisen = []')
    path.write_text(text)
    (site / "scripts" / "ivr.py").chmod(0o644)
    result = pbx("check", "--config", path)
    assert result.exit_code == 1 and result.stdout == ""
    lines = text.splitlines()
    lisen = lines.index("lisen = []") + 1
    assert result.stderr.splitlines() == [
        f"{path}:{lisen}: unknown key 'lisen' in [sip]; did you mean 'listen'?",
    ]


def test_check_warns_about_a_broken_script_and_passes(site: Path) -> None:
    path = site / "pbx.toml"
    (site / "scripts" / "ivr.py").chmod(0o644)
    result = pbx("check", "--config", path)
    assert result.exit_code == 0
    first, second = [no for no, line in enumerate(path.read_text().splitlines(), 1)
                     if line.startswith("script =")]
    assert result.stderr.splitlines() == [
        f"{path}:{first}: warning: script scripts/ivr.py is not executable (chmod +x)",
        f"{path}:{second}: warning: script scripts/ivr.py is not executable (chmod +x)",
    ]
    assert result.stdout == "config OK: 2 routes, 2 users, 2 warnings\n"


def test_check_reports_a_broken_prompt(site: Path) -> None:
    (site / "sounds" / "en" / "welcome.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    result = pbx("check", "--config", site / "pbx.toml")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{site}/sounds/en/welcome.wav: ")


def test_config_defaults_to_env_then_cwd(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pbx("check", env={"PBX_CONFIG": str(site / "pbx.toml")}).exit_code == 0
    monkeypatch.chdir(site)
    assert pbx("check").stdout == "config OK: 2 routes, 2 users\n"
    monkeypatch.chdir(site / "scripts")
    result = pbx("check")
    assert result.exit_code == 1 and "pbx.toml: cannot read" in result.stderr


def test_cdr_json_lists_newest_first(filled: Path) -> None:
    result = pbx("cdr", "--config", filled, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["call_id"] for r in rows] == ["CALL2", "CALL1", "CALL0"]
    first = rows[0]
    assert {"call_id", "caller", "called", "route", "disposition", "start", "answer", "end",
            "duration", "billsec"} <= set(first)
    assert (first["caller"], first["called"], first["disposition"]) == ("1003", "100", "answered")
    assert (first["duration"], first["billsec"]) == (31.0, 30.0)
    assert datetime.fromisoformat(first["start"]) == NOW - timedelta(hours=1)


def test_cdr_since_and_limit(filled: Path) -> None:
    def ids(*args: str) -> list[str]:
        result = pbx("cdr", "--config", filled, "--json", *args)
        assert result.exit_code == 0, result.output
        return [r["call_id"] for r in json.loads(result.stdout)]

    assert ids("--since", "150m") == ["CALL2", "CALL1"]
    assert ids("--limit", "1") == ["CALL2"]
    assert ids("--since", (NOW - timedelta(minutes=61)).isoformat()) == ["CALL2"]
    assert ids("--since", "1w", "--limit", "2") == ["CALL2", "CALL1"]
    bad = pbx("cdr", "--config", filled, "--since", "last tuesday")
    assert bad.exit_code == 2 and "use an age like 1h" in bad.stderr


def test_cdr_table_shows_peer_text_literally(filled: Path) -> None:
    result = pbx("cdr", "--config", filled)
    assert result.exit_code == 0, result.output
    assert "3 calls, newest first" in result.stdout
    assert "1002 ([bold]Mallory[/bold])" in result.stdout
    assert "CALL0" in result.stdout and "1001 (Alice)" in result.stdout
    assert "caller BYE 200" in result.stdout


def test_cdr_without_a_database_says_so(site: Path) -> None:
    result = pbx("cdr", "--config", site / "pbx.toml")
    assert result.exit_code == 1
    assert f"no call database at {site}/var/pbx.db" in result.stderr
    assert not (site / "var").exists()


def test_trace_renders_script_runs(filled: Path) -> None:
    result = pbx("trace", "CALL2", "--config", filled)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for needle in ("#2 SCRIPT", "+0.040s", "PBX_CALLER", "play welcome", "looked up [red]CRM[/red]",
                   "exit", "0.031", "stdin", '"caller": "1003"', "#3 ERROR",
                   "script timeout after 5 s", "CALL2"):
        assert needle in out, needle
    assert out.index("#1 EVENT") < out.index("#2 SCRIPT") < out.index("#3 ERROR")


def test_trace_json_and_unknown_call(filled: Path) -> None:
    result = pbx("trace", "CALL2", "--config", filled, "--json")
    entries = json.loads(result.stdout)
    assert [(e["seq"], e["kind"]) for e in entries] == [(1, "event"), (2, "script"), (3, "error")]
    assert entries[1]["data"]["stdout"] == "answer\nplay welcome\n"
    assert datetime.fromisoformat(entries[0]["time"]) == NOW
    missing = pbx("trace", "NOPE", "--config", filled)
    assert missing.exit_code == 1 and "no call 'NOPE'" in missing.stderr
    answered_no_trace = pbx("trace", "CALL0", "--config", filled)
    assert answered_no_trace.exit_code == 0 and "(no trace entries)" in answered_no_trace.stdout


def test_run_hands_the_loaded_config_to_the_server(site: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[Config] = []
    watching: list[bool] = []
    fake = types.ModuleType("pbxcore.server")

    formats: list[str | None] = []

    def run_forever(config: Config, *, watch: bool, loop: str,
                    log_format: str | None = None) -> None:
        got.append(config)
        watching.append(watch)
        formats.append(log_format)
        assert loop == "asyncio"

    fake.run_forever = run_forever  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pbxcore.server", fake)
    assert pbx("run", "--config", site / "pbx.toml").exit_code == 0
    assert [c.path for c in got] == [site / "pbx.toml"] and watching == [True]
    assert formats == [None]  # the server then takes [log] format
    assert pbx("run", "--log-format", "json", "--config", site / "pbx.toml").exit_code == 0
    assert formats[-1] == "json"
    del got[1:], watching[1:]
    assert pbx("run", "--no-watch", "--config", site / "pbx.toml").exit_code == 0
    assert watching == [True, False]
    got.pop()
    (site / "scripts" / "ivr.py").unlink()  # a route's script missing: run starts anyway
    assert pbx("run", "--config", site / "pbx.toml").exit_code == 0 and len(got) == 2
    assert [reason for _, _, reason in got[-1].warnings] == [
        "script scripts/ivr.py does not exist"] * 2
    got.pop()
    path = site / "pbx.toml"
    path.write_text(path.read_text().replace("[[routes]]", "[[routes]]\nscrpit = 1", 1))
    result = pbx("run", "--config", path)
    assert result.exit_code == 1 and "scrpit" in result.stderr and len(got) == 1


def test_parse_since() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_since("90s", now) == now - timedelta(seconds=90)
    assert parse_since("1.5h", now) == now - timedelta(minutes=90)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2024-04-30T09:00", now) == datetime(2024, 4, 30, 9, tzinfo=UTC)
    assert parse_since("2024-04-30T09:00+02:00", now) == datetime(2024, 4, 30, 7, tzinfo=UTC)
    with pytest.raises(click.BadParameter):
        parse_since("2x", now)


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://pbx:s3cret@db/pbx") == "postgresql://pbx:***@db/pbx"
    assert redact("postgresql://pbx@db/pbx") == "postgresql://pbx@db/pbx"


def test_python_dash_m_runs_the_same_cli(site: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pbxcore", "check", "--config", site / "pbx.toml"],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[3])
    assert (proc.returncode, proc.stdout) == (0, "config OK: 2 routes, 2 users\n"), proc.stderr
