"""The web server: aiohttp on the switch's own event loop (`[web] listen`).

Why aiohttp: asyncio-native (it runs beside the SIP endpoint in the same loop, no second process
or thread), well kept, and it has what this needs built in: streamed responses for Server-Sent
Events, static files with HTTP range requests (recordings), signals to set headers on every
response, and a websocket client the browser tests drive Chromium with.

Access (docs/web.md): every page but the login needs a session cookie; `viewer` sees the
wallboard, `supervisor` everything; POSTs other than the login need the X-CSRF-Token header.
Every response carries the security headers; API answers are `no-store`.  Caller text reaches
the page only as JSON that the scripts put into the page with textContent, never as HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from pbxcore.config import Config
from pbxcore.control.server import ControlServer
from pbxcore.sip.auth_throttle import AuthThrottle
from pbxcore.store import Store
from pbxcore.web import api
from pbxcore.web.auth import COOKIE, Session, Sessions, check_password
from pbxcore.web.live import Feed

log = logging.getLogger("pbxcore.web")
STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
PUBLIC = frozenset({"/login", "/static/app.css", "/static/login.js", "/favicon.ico"})
VIEWER = frozenset({"/", "/wallboard", "/api/me", "/api/live", "/api/top", "/logout"})
PAGES = {"/wallboard": "wallboard.html", "/reports": "reports.html", "/calls": "calls.html"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WebContext:
    """What the handlers reach: the live config (hot reload swaps it), the control commands
    (called in-process), the store, the session signer and the live feed."""

    config: Callable[[], Config]
    control: ControlServer
    store: Store
    sessions: Sessions
    feed: Feed
    # Failed logins per address and per name: the SIP side's guesser brake, reused.
    throttle: AuthThrottle = field(default_factory=AuthThrottle)


CTX = web.AppKey("ctx", WebContext)
SESSION = web.RequestKey("session", Session)
ROLE = web.RequestKey("role", str)


def ctx(request: web.Request) -> WebContext:
    return request.app[CTX]


def session_of(request: web.Request) -> tuple[Session, str] | None:
    """The request's session and its user's current role, or None."""
    c = ctx(request)
    web_config = c.config().web
    s = c.sessions.read(request.cookies.get(COOKIE), web_config.session_hours * 3600)
    if s is None:
        return None
    user = web_config.user(s.name)
    return (s, user.role) if user is not None else None


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path in PUBLIC:
        return await handler(request)
    found = session_of(request)
    if found is None:
        if path.startswith("/api/") or request.method != "GET":
            raise web.HTTPUnauthorized(text="log in first")
        raise web.HTTPSeeOther("/login")
    s, role = found
    if role != "supervisor" and path not in VIEWER and not path.startswith("/static/"):
        raise web.HTTPForbidden(text="the viewer role sees the wallboard only")
    if request.method == "POST" and path != "/logout" and \
            not ctx(request).sessions.csrf_ok(s, request.headers.get("X-CSRF-Token")):
        raise web.HTTPForbidden(text="missing or wrong CSRF token")
    request[SESSION], request[ROLE] = s, role
    return await handler(request)


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Frame-Options"] = "DENY"
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.path.startswith("/api/") or request.path in PAGES:
        h["Cache-Control"] = "no-store"


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers={"Content-Type": "text/html; charset=utf-8"})


async def login_page(request: web.Request) -> web.StreamResponse:
    return _page("login.html")


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, password = form.get("name"), form.get("password")
    c = ctx(request)
    web_config = c.config().web
    source = request.remote or "?"
    claimed = name if isinstance(name, str) else None
    now = asyncio.get_running_loop().time()
    why = c.throttle.blocked(source, claimed, now)
    if why is not None:
        log.warning("web login from %s refused: %s", source, why)
        raise web.HTTPTooManyRequests(text="too many failed logins: try again later")
    if claimed is None or not isinstance(password, str) or \
            check_password(web_config, claimed, password) is None:
        verdict = c.throttle.failed(source, claimed, now)
        log.warning("web login refused from %s%s", source,
                    "".join(f"; blocked {b}" for b in verdict.blocked))
        await asyncio.sleep(verdict.delay)  # slows a guesser, not a typo (the first few)
        raise web.HTTPSeeOther("/login?failed=1")
    c.throttle.succeeded(source, claimed, now)
    response = web.HTTPSeeOther("/wallboard")
    response.set_cookie(COOKIE, c.sessions.issue(claimed), httponly=True, samesite="Strict",
                        max_age=int(web_config.session_hours * 3600), path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/wallboard")


async def page(request: web.Request) -> web.StreamResponse:
    return _page(PAGES[request.path])


async def me(request: web.Request) -> web.StreamResponse:
    s = request[SESSION]
    return web.json_response({"name": s.name, "role": request[ROLE],
                              "csrf": ctx(request).sessions.csrf(s)})


def build_app(context: WebContext) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[CTX] = context
    app.on_response_prepare.append(_headers)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", root)
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/api/me", me)
    api.routes(app)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    return app


class WebServer:
    """Started and stopped by the composition root (pbxcore.server)."""

    def __init__(self, context: WebContext) -> None:
        self.context = context
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(build_app(self.context), access_log=None,
                                     handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        log.info("web wallboard on http://%s:%d/", host, port)

    async def stop(self) -> None:
        await self.context.feed.stop()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None


def context_for(config: Callable[[], Config], control: ControlServer, store: Store,
                secret: str) -> WebContext:
    async def call(name: str, args: dict[str, Any]) -> Any:
        return await control.call(name, args)

    return WebContext(config, control, store, Sessions(secret), Feed(call, config))
