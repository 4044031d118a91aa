"""The wallboard, reports and access rules in a real browser: Debian's chromium headless,
driven over the DevTools protocol, against a real `pbx run` serving [web] with a queue and raw
test UAC callers waiting in it (one with a hostile display name).

Checks: the login form; the waiting count on the page; a second caller and an agent's pause
reach the open page without a reload (SSE: the delay is printed); the hostile name is text;
POST without the CSRF token is refused, with it the supervisor hangs up a call; the XLSX
download; a viewer sees the wallboard and is refused the reports (403)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.cdp import CHROMIUM, Browser
from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac

pytestmark = pytest.mark.peer
HOSTILE = "<img src=x onerror='window.__xss=1'>Eve"
QUEUE_SCRIPT = '#!/bin/sh\ncase "$PBX_EVENT" in incoming) echo "queue sales";; esac\n'


def web_user(name: str, role: str, password: str) -> str:
    """A [[web.users]] table made by `pbx web passwd` (so the helper is tested too)."""
    out = subprocess.run([sys.executable, "-m", "pbxcore", "web", "passwd", "--name", name,
                          "--role", role, "--password-stdin"], input=password + "\n",
                         capture_output=True, text=True, timeout=30, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout
    return out.stdout


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SwitchProcess, int]]:
    s = tmp_path / "s"
    s.mkdir()
    (s / "q.sh").write_text(QUEUE_SCRIPT)
    (s / "q.sh").chmod(0o755)
    port, web_port = free_port(), free_port()
    routes = f'[[routes]]\nmatch = "^700$"\nscript = "{s}/q.sh"\npublic = true\n'
    extra = (f'[monitor]\ncapacity = 10\n'
             f'[web]\nlisten = "127.0.0.1:{web_port}"\n'
             + web_user("sup", "supervisor", "sup-password")
             + web_user("tv", "viewer", "tv-password")
             + '[[queues]]\nname = "sales"\nmembers = ["1001"]\nalert_longest_wait = 60\n'
             + '[[trunks]]\nname = "provider"\nhost = "127.0.0.2"\nregister = false\n')
    config = write_config(tmp_path, port=port, routes=routes, scripts=s, extra=extra)
    sw = start_switch(tmp_path, config, port)
    yield sw, web_port
    sw.stop()


def caller(sw: SwitchProcess, user: str, display: str) -> Uac:
    uac = Uac(sw.port, user=user, display=display)
    resp = uac.call("700")
    assert resp is not None and resp.status == 200, resp
    return uac


async def login(b: Browser, base: str, name: str, password: str) -> None:
    await b.goto(f"{base}/login")
    await b.eval(f"document.getElementById('name').value = {json.dumps(name)};"
                 f"document.getElementById('password').value = {json.dumps(password)};"
                 "document.getElementById('login-button').click(); true")
    await b.wait_for("location.pathname === '/wallboard' && document.body.dataset.updates")


async def test_wallboard_in_chromium(site: tuple[SwitchProcess, int], tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "apt-get install chromium (.ci/bootstrap.sh does)"
    sw, web_port = site
    base = f"http://127.0.0.1:{web_port}"
    uacs = [await asyncio.to_thread(caller, sw, "0601", HOSTILE)]
    b = Browser(tmp_path / "profile")
    try:
        await b.start()
        # Not logged in: the wallboard sends the browser to the login form.
        await b.goto(f"{base}/wallboard")
        assert await b.eval("location.pathname") == "/login"
        await b.eval("document.getElementById('name').value = 'sup';"
                     "document.getElementById('password').value = 'wrong';"
                     "document.getElementById('login-button').click(); true")
        await b.wait_for("location.search.includes('failed') && "
                         "!document.getElementById('failed').hidden")
        await login(b, base, "sup", "sup-password")
        waiting = "document.querySelector('[data-queue=sales] .waiting').textContent"
        await b.wait_for(f"{waiting} === '1'")
        assert await b.eval("document.getElementById('lines').textContent") == "lines 1/10"
        assert "provider" in await b.eval("document.getElementById('trunks').textContent")
        # The hostile display name is shown as text: no element made of it, no script run.
        name = await b.eval("document.querySelector('#calls .caller-name').textContent")
        assert name == HOSTILE
        assert await b.eval("document.querySelectorAll('main img').length") == 0
        assert await b.eval("window.__xss") is None

        await b.eval("window.__same_page = 1")
        uacs.append(await asyncio.to_thread(caller, sw, "0602", "Bob"))
        took = await b.wait_for(f"{waiting} === '2'")
        print(f"\nsecond caller on the page {took:.2f} s after its 200 OK")
        assert await b.eval("window.__same_page") == 1  # pushed, not reloaded

        # An agent's state change reaches the page; the pause goes through the page's POST.
        login_out = sw.pbx("agent", "login", "1001")
        assert login_out.returncode == 0, login_out.stderr
        agent_state = "document.querySelector('[data-agent=\"1001\"] .state').textContent"
        await b.wait_for(f"{agent_state} !== 'logged_out'")
        refused = await b.eval("fetch('/api/agent', {method: 'POST', headers: "
                               "{'Content-Type': 'application/json'}, body: JSON.stringify("
                               "{op: 'pause', extension: '1001'})}).then(r => r.status)")
        assert refused == 403  # no CSRF token
        paused = await b.eval("PBX.post('/api/agent', {op: 'pause', extension: '1001', "
                              "reason: 'coaching'}).then(r => r.status)")
        assert paused == 200
        took = await b.wait_for(f"{agent_state} === 'paused'")
        print(f"agent pause on the page {took:.2f} s after the POST")
        reason = "document.querySelector('[data-agent=\"1001\"]').textContent"
        assert "coaching" in await b.eval(reason)

        # Hang up the hostile caller from the page (CSRF token sent by PBX.post).
        call_id = await b.eval("document.querySelector('#calls tr[data-call]').dataset.call")
        status = await b.eval(f"PBX.post('/api/hangup', {{call_id: {json.dumps(call_id)}}})"
                              ".then(r => r.status)")
        assert status == 200
        await b.wait_for(f"{waiting} === '1'")

        # Security headers on the page and no-store on the API.
        headers = await b.eval("fetch('/api/top').then(r => [r.headers.get('cache-control'), "
                               "r.headers.get('x-frame-options'), "
                               "r.headers.get('content-security-policy')])")
        assert headers[0] == "no-store" and headers[1] == "DENY"
        assert "script-src 'self'" in headers[2] and "unsafe-inline" not in headers[2]
        shot = Path(os.environ.get("PBX_WEB_SCREENSHOT", tmp_path / "wallboard.png"))
        await b.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # Reports: the page draws the table and charts; the XLSX is a workbook.
        await b.goto(f"{base}/reports")
        await b.wait_for("document.querySelectorAll('#report tfoot td').length > 5 && "
                         "document.querySelectorAll('#charts svg').length === 4")
        xlsx = await b.eval("fetch('/api/report.xlsx?by=queue').then(async r => [r.status, "
                            "r.headers.get('content-type'), "
                            "Array.from(new Uint8Array(await r.arrayBuffer()).slice(0, 2))])")
        assert xlsx[0] == 200 and "spreadsheetml" in xlsx[1] and xlsx[2] == [0x50, 0x4B]
        await b.goto(f"{base}/calls")
        await b.wait_for("document.querySelectorAll('#cdrs tbody tr').length >= 2")
        await b.eval("document.querySelector('#cdrs tbody tr:last-child button').click(); true")
        await b.wait_for("document.getElementById('trace').textContent.includes(' action ')")

        # The viewer: the wallboard yes, reports and call detail no.
        await b.eval("document.querySelector('form[action=\"/logout\"]').submit(); true")
        await b.wait_for("location.pathname === '/login'")
        await login(b, base, "tv", "tv-password")
        await b.wait_for(f"{waiting} === '1'")
        statuses = await b.eval("Promise.all(['/reports', '/api/report', '/api/cdrs', "
                                "'/calls'].map(u => fetch(u).then(r => r.status)))")
        assert statuses == [403, 403, 403, 403]
        assert await b.eval("document.querySelector('a[href=\"/reports\"]').hidden") is True
    finally:
        await b.stop()
        for u in uacs:
            await asyncio.to_thread(u.close)
