"""The web server inside a real switch started in-process ([web] listen), over HTTP with
aiohttp's client: login and sessions, roles, CSRF, security headers, recordings with range
requests and kept under [paths] recordings, the report and CDR endpoints."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from pbxcore.config import load_config
from pbxcore.server import RunningSwitch, start_switch
from pbxcore.sip.auth_throttle import AuthThrottle
from pbxcore.store.base import CdrStart
from pbxcore.web.auth import hash_password
from tests.integration.switch_harness import free_port, free_rtp_range

SUP, VIEW = hash_password("sup-password"), hash_password("tv-password")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[RunningSwitch, str]]:
    port, web_port = free_port(), free_port()
    low, high = free_rtp_range()
    (tmp_path / "pbx.toml").write_text(textwrap.dedent(f"""\
        [sip]
        listen = ["udp:127.0.0.1:{port}"]
        [media]
        rtp_ports = "{low}-{high}"
        [store]
        dsn = "sqlite:///var/pbx.db"
        [web]
        listen = "127.0.0.1:{web_port}"
        [[web.users]]
        name = "sup"
        role = "supervisor"
        password_hash = "{SUP}"
        [[web.users]]
        name = "tv"
        role = "viewer"
        password_hash = "{VIEW}"
        [[users]]
        extension = "1001"
        password = "x"
        """))
    config = load_config(tmp_path / "pbx.toml")
    running = await start_switch(config)
    yield running, f"http://127.0.0.1:{web_port}"
    await running.stop()


async def logged_in(base: str, name: str, password: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/login", data={"name": name, "password": password},
                         allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/wallboard"
    return http


async def test_access_rules_headers_and_csrf(site: tuple[RunningSwitch, str],
                                             tmp_path: Path) -> None:
    running, base = site
    async with aiohttp.ClientSession() as anon:
        async with anon.get(f"{base}/api/top") as r:
            assert r.status == 401
        async with anon.get(f"{base}/wallboard", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
        async with anon.post(f"{base}/login", data={"name": "sup", "password": "nope"},
                             allow_redirects=False) as r:
            assert r.headers["Location"] == "/login?failed=1" and "Set-Cookie" not in r.headers
        async with anon.get(f"{base}/api/top", cookies={"pbx_session": "forged.cookie"}) as r:
            assert r.status == 401
    assert (tmp_path / "var" / "web.secret").stat().st_mode & 0o777 == 0o600

    sup = await logged_in(base, "sup", "sup-password")
    try:
        async with sup.get(f"{base}/api/me") as r:
            me = await r.json()
            assert me["role"] == "supervisor"
            assert r.headers["Cache-Control"] == "no-store"
            assert r.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        async with sup.get(f"{base}/api/top") as r:
            top = await r.json()
            assert top["lines_in_use"] == 0 and top["queues"] is None
        async with sup.post(f"{base}/api/hangup", json={"call_id": "x"}) as r:
            assert r.status == 403  # no CSRF token
        async with sup.post(f"{base}/api/hangup", json={"call_id": "x"},
                            headers={"X-CSRF-Token": "0" * 64}) as r:
            assert r.status == 403  # a wrong one
        async with sup.post(f"{base}/api/hangup", json={"call_id": "nosuch"},
                            headers={"X-CSRF-Token": me["csrf"]}) as r:
            assert r.status == 409 and (await r.json())["error"] == "not_found"
        async with sup.get(f"{base}/api/report?by=hour&from=1h") as r:
            assert r.status == 200 and (await r.json())["by"] == "hour"
        async with sup.get(f"{base}/api/report?from=garbage") as r:
            assert r.status == 400
        async with sup.get(f"{base}/api/report.csv?by=day") as r:
            assert r.status == 200 and (await r.text()).startswith("day,")
    finally:
        await sup.close()

    tv = await logged_in(base, "tv", "tv-password")
    try:
        for path in ("/reports", "/calls", "/api/report", "/api/cdrs", "/api/cdr/x"):
            async with tv.get(f"{base}{path}") as r:
                assert r.status == 403, path
        async with tv.get(f"{base}/api/top") as r:
            assert r.status == 200
    finally:
        await tv.close()


async def test_recordings_with_ranges_and_only_under_recordings(
        site: tuple[RunningSwitch, str], tmp_path: Path) -> None:
    running, base = site
    store = running.deps.store
    wav = running.deps.config.paths.recordings / "2026/01/01/c1-1.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    (tmp_path / "secret.txt").write_text("not a recording")
    now = datetime.now(UTC)
    await store.cdr_open(CdrStart("c1", "sip1", now, "0601", "700", caller_name="<b>x</b>"))
    await store.cdr_append("c1", "recordings", "2026/01/01/c1-1.wav")
    await store.cdr_append("c1", "recordings", "../../secret.txt")
    sup = await logged_in(base, "sup", "sup-password")
    try:
        url = f"{base}/api/recording/c1/1"
        async with sup.get(url, headers={"Range": "bytes=4-7"}) as r:
            assert r.status == 206 and await r.read() == bytes(range(4))
            assert r.headers["Content-Range"] == f"bytes 4-7/{wav.stat().st_size}"
        async with sup.get(url) as r:
            assert r.status == 200 and await r.read() == wav.read_bytes()
        async with sup.get(f"{base}/api/recording/c1/2") as r:
            assert r.status == 404  # outside [paths] recordings
        async with sup.get(f"{base}/api/recording/c1/3") as r:
            assert r.status == 404
        async with sup.get(f"{base}/api/cdrs?number=0601&from=1h") as r:
            cdrs = (await r.json())["cdrs"]
            assert [c["call_id"] for c in cdrs] == ["c1"]
            assert cdrs[0]["caller_name"] == "<b>x</b>"  # data, escaped by the page
        async with sup.get(f"{base}/api/cdrs?number=0999") as r:
            assert (await r.json())["cdrs"] == []
        async with sup.get(f"{base}/api/cdr/c1") as r:
            assert (await r.json())["cdr"]["recordings"][0] == "2026/01/01/c1-1.wav"
    finally:
        await sup.close()
    tv = await logged_in(base, "tv", "tv-password")
    try:
        async with tv.get(f"{base}/api/recording/c1/1") as r:
            assert r.status == 403
    finally:
        await tv.close()


async def test_reload_applies_users_at_once_and_listen_after_restart(
        site: tuple[RunningSwitch, str], tmp_path: Path) -> None:
    running, base = site
    path = tmp_path / "pbx.toml"
    text = path.read_text()
    other = free_port()
    text = text.replace(f'listen = "{base.removeprefix("http://")}"',
                        f'listen = "127.0.0.1:{other}"')
    text = text.replace('name = "tv"\nrole = "viewer"', 'name = "tv"\nrole = "supervisor"')
    path.write_text(text + f'[[web.users]]\nname = "new"\npassword_hash = "{VIEW}"\n')
    report = await running.reload()
    assert report.applied and report.restart == ["[web] listen"]
    new = await logged_in(base, "new", "tv-password")  # still on the old port
    try:
        async with new.get(f"{base}/api/me") as r:
            assert (await r.json())["role"] == "viewer"
    finally:
        await new.close()
    tv = await logged_in(base, "tv", "tv-password")
    try:
        async with tv.get(f"{base}/api/report") as r:
            assert r.status == 200  # promoted by the reload
    finally:
        await tv.close()


async def test_password_guessing_is_blocked(site: tuple[RunningSwitch, str]) -> None:
    running, base = site
    assert running.web is not None
    # The real throttle with a short fuse (what a guesser would reach after ten tries).
    running.web.context.throttle = AuthThrottle(free=1, limit=3, max_delay=0.01)
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(f"{base}/login", data={"name": "sup", "password": "guess"},
                                 allow_redirects=False) as r:
                assert r.headers["Location"] == "/login?failed=1"
        async with http.post(f"{base}/login", data={"name": "sup", "password": "sup-password"},
                             allow_redirects=False) as r:
            assert r.status == 429 and "Set-Cookie" not in r.headers
