"""The examples under examples/ pass their own fixtures with the real `pbx replay`, and it notices
when a script is broken.

Every example folder's fixtures are replayed as a user would (`python -m pbxcore replay DIR`, a
subprocess from the repository root); the CRM example also runs against a real PostgreSQL (it
must be up: this test fails, it does not skip, when it is not).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pbxcore.media.sounds import SoundError, SoundLibrary
from pbxcore.script.actions import Gather, Play, parse_action_line

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
OURS = ["business-hours", "call-centre", "crm-lookup", "forward-while-away",
        "notification-campaign", "polyglot", "two-shops", "voicemail-after-hours", "workers"]
PG_DSN = "postgresql://postgres@127.0.0.1/test"


def replay(*args: str | Path) -> tuple[int, dict[str, Any], str]:
    """Exit status, the --json report and stderr of `python -m pbxcore replay --json ARGS`."""
    proc = subprocess.run([sys.executable, "-m", "pbxcore", "replay", "--json", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, report, proc.stderr


def failures(report: dict[str, Any]) -> list[str]:
    return [f"{f['path']}: {f.get('error') or [s for s in f['steps'] if not s['passed']]}"
            for f in report.get("fixtures", []) if not f["passed"]]


def test_every_example_folder_is_covered() -> None:
    found = sorted(p.parent.name for p in EXAMPLES.glob("*/fixtures"))
    assert found == OURS  # a new example must get fixtures (and land in OURS)


@pytest.mark.parametrize("name", OURS)
def test_example_fixtures_pass(name: str) -> None:
    status, report, stderr = replay(EXAMPLES / name / "fixtures")
    assert status == 0, failures(report) or stderr
    assert report["passed"] is True
    assert len(report["fixtures"]) >= 3
    assert all(f["passed"] for f in report["fixtures"])


@pytest.mark.parametrize("name", OURS)
def test_example_config_checks_and_readme(name: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pbxcore", "check", "--config",
                           str(EXAMPLES / name / "pbx.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    readme = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    assert f"pbx replay examples/{name}/fixtures" in readme


def played(fixture: dict[str, Any]) -> set[str]:
    """Every sound a fixture expects to be played (play files and gather prompts)."""
    names: set[str] = set()
    for step in fixture["steps"]:
        expect = step.get("expect", [])
        for line in expect["actions"] if isinstance(expect, dict) else expect:
            action = parse_action_line(line)
            if isinstance(action, Play):
                names.update(action.files)
            elif isinstance(action, Gather) and action.prompt:
                names.add(action.prompt)
    return names


@pytest.mark.parametrize("name", OURS)
def test_every_prompt_the_fixtures_expect_exists(name: str, tmp_path: Path) -> None:
    # The stock prompts, or the example's own (where `cp -r examples/NAME/sounds/. sounds/` puts
    # them): a misspelt prompt name would pass replay and fail on a real call.
    stock = SoundLibrary(ROOT / "sounds", tmp_path)
    own = SoundLibrary(EXAMPLES / name / "sounds", tmp_path)
    names: set[str] = set()
    for path in (EXAMPLES / name / "fixtures").rglob("*.json"):
        names |= played(json.loads(path.read_text(encoding="utf-8")))
    assert names
    missing = []
    for sound in sorted(names):
        try:
            stock.load(sound, "en")
        except SoundError:
            try:
                own.load(sound, "en")
            except SoundError as exc:
                missing.append(str(exc))
    assert not missing


def test_polyglot_runs_every_script_through_every_case() -> None:
    cases = sorted(p.name for p in (EXAMPLES / "polyglot" / "cases").glob("*.json"))
    for language in ("bash", "python", "perl", "node"):
        copies = sorted(p.name for p in (EXAMPLES / "polyglot" / "fixtures" / language).glob("*.json"))
        assert copies == cases, language
    proc = subprocess.run([sys.executable, str(EXAMPLES / "polyglot" / "make-fixtures.py"), "--check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"run examples/polyglot/make-fixtures.py: {proc.stderr}"


def copy_fixtures(src: Path, dst: Path, script: Path, env: dict[str, str] | None = None) -> None:
    """The fixtures of `src` written to `dst`, aimed at `script` (absolute), with `env` added."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.json")):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        fixture["script"] = str(script)
        fixture["env"] = {**fixture.get("env", {}), **(env or {})}
        (dst / path.name).write_text(json.dumps(fixture), encoding="utf-8")


@pytest.mark.parametrize(("old", "new", "why"), [
    # A slip in the logic: the valid output is a different prompt.
    ('return ["play goodbye", "hangup"]', 'return ["play good-bye", "hangup"]', "play good-bye"),
    # A crash on one event only.
    ('if event == "hangup":', 'if event == "hangup":\n        raise SystemExit(3)', "exit status 3"),
    # Output the switch would refuse.
    ('return ["answer", MENU]', 'return ["answer", "plya welcome", MENU]', "unknown action"),
])
def test_a_broken_copy_fails_replay(tmp_path: Path, old: str, new: str, why: str) -> None:
    source = (EXAMPLES / "polyglot" / "ivr.py").read_text(encoding="utf-8")
    assert source.count(old) == 1
    broken = tmp_path / "ivr.py"
    broken.write_text(source.replace(old, new), encoding="utf-8")
    broken.chmod(0o755)
    copy_fixtures(EXAMPLES / "polyglot" / "fixtures" / "python", tmp_path / "fixtures", broken)

    status, report, stderr = replay(tmp_path / "fixtures")
    assert status == 1, stderr
    assert report["passed"] is False
    assert any(not f["passed"] for f in report["fixtures"])
    assert why in json.dumps(report)
    # The unbroken script passes the very same copies: the failure is the script's.
    shutil.copy(EXAMPLES / "polyglot" / "ivr.py", broken)
    status, report, _ = replay(tmp_path / "fixtures")
    assert status == 0, failures(report)


@pytest.fixture
def crm_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema seeded with examples/crm-lookup/crm.sql, dropped afterwards."""
    schema = f"crm_example_{uuid.uuid4().hex[:12]}"
    seed = (EXAMPLES / "crm-lookup" / "crm.sql").read_text(encoding="utf-8")
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
        try:
            pg.execute(f"SET search_path TO {schema}")
            pg.execute(seed)
            yield schema
        finally:
            pg.execute(f"DROP SCHEMA {schema} CASCADE")


def test_crm_lookup_against_postgresql(tmp_path: Path, crm_schema: str) -> None:
    # The script finds psycopg through PATH (its shebang is /usr/bin/env python3), the way a
    # route's env would give it a virtualenv; search_path puts it in this run's schema.
    dsn = f"{PG_DSN}?options=-csearch_path%3D{crm_schema}&connect_timeout=5"
    env = {"CRM_DSN": dsn, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        # A customer only this schema knows: proves the lookups went to PostgreSQL.
        pg.execute(f"INSERT INTO {crm_schema}.customers (phone, name, tier, manager) "
                   "VALUES ('5557777', 'Pia Postgres', 'vip', '1002')")
    fixtures = tmp_path / "fixtures"
    copy_fixtures(EXAMPLES / "crm-lookup" / "fixtures", fixtures,
                  EXAMPLES / "crm-lookup" / "lookup.py", env)
    (fixtures / "crm-down.json").unlink()  # that one is about SQLite failing
    (fixtures / "pg-only.json").write_text(json.dumps({
        "pbxcore_fixture": 1, "name": "a VIP only the PostgreSQL schema has",
        "script": str(EXAMPLES / "crm-lookup" / "lookup.py"), "env": env,
        "call": {"caller": "5557777", "called": "400"},
        "steps": [{"event": "incoming", "expect": [
            "answer", "set CUSTOMER_NAME='Pia Postgres' PRIORITY=vip MANAGER=1002",
            "log VIP Pia Postgres, manager 1002", "play crm-lookup/vip-welcome",
            "transfer 1002 timeout=20"]}],
    }), encoding="utf-8")

    status, report, stderr = replay(fixtures)
    assert status == 0, failures(report) or stderr
    assert len(report["fixtures"]) == 6
    assert "crm lookup failed" not in json.dumps(report)


def test_crm_lookup_postgresql_down_is_an_unknown_caller(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    env = {"CRM_DSN": "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2",
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    fixture = tmp_path / "down.json"
    fixture.write_text(json.dumps({
        "pbxcore_fixture": 1, "name": "PostgreSQL refuses: unknown caller, error logged",
        "script": str(EXAMPLES / "crm-lookup" / "lookup.py"), "env": env,
        "call": {"caller": "1001", "called": "400"},
        "steps": [{"event": "incoming", "expect": [
            "answer", "set PRIORITY=new CRM=unavailable", "log crm unavailable: OperationalError",
            "play crm-lookup/first-time", "hangup"]}],
    }), encoding="utf-8")
    status, report, stderr = replay(fixture)
    assert status == 0, failures(report) or stderr


def test_crm_lookup_builds_its_sqlite_database_once(tmp_path: Path) -> None:
    # A copy of the example in tmp_path: no crm.db yet, the first call creates it from crm.sql.
    for name in ("lookup.py", "crm.sql"):
        shutil.copy2(EXAMPLES / "crm-lookup" / name, tmp_path / name)
    event = json.dumps({"protocol": 1, "event": "incoming", "caller": "1002"}) + "\n"
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}
    runs = [subprocess.run([str(tmp_path / "lookup.py")], input=event, env=env, cwd="/",
                           capture_output=True, text=True, timeout=30, check=True)
            for _ in range(2)]
    assert runs[0].stdout == runs[1].stdout
    actions = json.loads(runs[0].stdout)
    assert actions[1] == {"action": "set", "vars": {
        "CUSTOMER_NAME": "Bob O'Brien", "LAST_ORDER": "4802", "LAST_ORDER_DATE": "2026-11-18",
        "PRIORITY": "normal"}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.db", "crm.sql", "lookup.py"]
    assert os.stat(tmp_path / "crm.db").st_size > 0


def test_two_shops_on_a_real_switch(tmp_path: Path) -> None:
    # The README's steps: the stock prompts plus the example's own in one sounds directory, the
    # two routes; then a real call to 7002 hears the book shop's greeting and presses 1.
    from tests.integration.switch_harness import free_port, start_switch, write_config
    from tests.integration.uac import Uac, rms

    sounds = tmp_path / "sounds"
    shutil.copytree(ROOT / "sounds", sounds)
    shutil.copytree(EXAMPLES / "two-shops" / "sounds", sounds, dirs_exist_ok=True)
    port = free_port()
    routes = "".join(f"""
[[routes]]
match = "^{number}$"
script = "{EXAMPLES / 'two-shops' / 'shops.py'}"
language = "en"
fallback = ["play beep", "hangup"]
""" for number in ("7001", "7002"))
    config = write_config(tmp_path, port=port, routes=routes)
    config.write_text(config.read_text().replace(f'sounds = "{ROOT / "sounds"}"',
                                                 f'sounds = "{sounds}"'))
    sw = start_switch(tmp_path, config, port)
    try:
        uac = Uac(sw.port, user="1001", password="secret1001")
        try:
            resp = uac.call("7002")
            assert resp is not None and resp.status == 200
            uac.rtp.drain(1.5)
            assert rms(uac.rtp.audio()) > 500, "no greeting heard"
            uac.rtp.send_dtmf("1")
            assert uac.wait_bye(15) is not None
        finally:
            uac.close()
        out = sw.pbx("cdr", "--json", "--limit", "1")
        assert out.returncode == 0, out.stderr
        cdr = json.loads(out.stdout)[0]
        assert cdr["called"] == "7002" and cdr["hangup_by"] == "script"
        assert cdr["vars"]["SHOP"] == "books" and cdr["vars"]["ORDER"] == "yes"
        assert cdr["vars"]["SHOP_NAME"] == "Paper Lantern Books"
    finally:
        sw.stop()
    assert "SoundError" not in sw.log_text() and "not found" not in sw.log_text()


def test_call_centre_on_a_real_switch(tmp_path: Path) -> None:
    # The example's script, prompts and queues on a real `pbx run`: a known customer calls the
    # book shop, presses 1 during the menu, waits for the operators; a SIPp operator (logged in
    # with `pbx agent`) gets the screen pop with the CRM id, answers, talks and hangs up.
    import wave

    from tests.integration.switch_harness import free_port, start_switch, write_config
    from tests.integration.uac import Uac, rms
    from tests.peers.helpers import closed_cdr
    from tests.peers.switching_helpers import USERS, Callees, SippCallee

    example = EXAMPLES / "call-centre"
    sounds = tmp_path / "sounds"
    shutil.copytree(ROOT / "sounds", sounds)
    shutil.copytree(example / "sounds", sounds, dirs_exist_ok=True)
    # The example's queues with the test's extensions (USERS: 1001..1007) as the agents.
    text = (example / "pbx.toml").read_text(encoding="utf-8")
    queues = text[text.index("[[queues]]"):text.index("[agents]")]
    for old, new in (("1101", "1005"), ("1102", "1006"), ("1103", "1007"), ("1201", "1001"),
                     ("1202", "1003"), ("1203", "1004"), ("1204", "1001")):
        queues = queues.replace(f'"{old}', f'"{new}')
    queues = queues.replace('alert = "alert.py"', f'alert = "{example / "alert.py"}"')
    routes = f"""
[[routes]]
match = "^710[12]$"
script = "{example / 'callcentre.py'}"
language = "en"
fallback = ["play beep", "hangup"]
""" + queues
    port = free_port()
    config = write_config(tmp_path, port=port, routes=routes, users=USERS)
    config.write_text(config.read_text().replace(f'sounds = "{ROOT / "sounds"}"',
                                                 f'sounds = "{sounds}"'))
    with wave.open(str(example / "sounds/en/call-centre/books-welcome.wav")) as w:
        welcome = w.getnframes() / w.getframerate()
    sw = start_switch(tmp_path, config, port)
    try:
        with Callees() as callees:
            operator = callees.start(SippCallee("queue_agent.xml", sw.port, "1005",
                                                tmp_path / "a1005"))
            login = sw.pbx("agent", "login", "1005", "--queue", "operators")
            assert login.returncode == 0, login.stdout + login.stderr
            uac = Uac(sw.port, user="1002", password=USERS["1002"])
            try:
                resp = uac.call("7102")
                assert resp is not None and resp.status == 200
                uac.rtp.drain(welcome + 2.0)  # the greeting, then the menu's gather
                assert rms(uac.rtp.audio()) > 500, "no greeting heard"
                uac.rtp.send_dtmf("1")
                assert uac.wait_bye(30) is not None  # the operator talked and hung up
            finally:
                uac.close()
            assert operator.wait() == 0, operator.logs()
            invite = operator.messages()
        cdr = closed_cdr(sw, uac.call_id)
        assert [(q["queue"], q["agent"], q["outcome"]) for q in cdr["queues"]] == [
            ("operators", "1005", "answered")]
        assert cdr["vars"]["SHOP"] == "books" and cdr["vars"]["TIER"] == "normal"
        assert cdr["vars"]["CRM_ID"] == "C-1002" and cdr["vars"]["CUSTOMER"] == "Bob O'Brien"
        # The screen pop: the queue in the display name, the CRM's data as X-Pbx-Var-* headers.
        lower = invite.lower()
        assert '"[operators] ' in invite, invite
        assert "x-pbx-var-crm_id: c-1002" in lower and "x-pbx-var-shop: books" in lower
        assert "x-pbx-var-customer: bob o'brien" in lower
    finally:
        sw.stop()
    log = sw.log_text()
    assert "SoundError" not in log and "not found" not in log, log[-4000:]
