"""`[web]` and `[[web.users]]` in pbx.toml: the supervisor wallboard and reports (pbxcore.web).

Called from ``pbxcore.config._check`` with its ``Checker``.  Off by default: only a non-empty
``[web] listen = "HOST:PORT"`` serves it.  Every page needs a login; users come from
``[[web.users]]`` with an argon2 hash made by `pbx web passwd` (never a plain password) and a
role: ``supervisor`` (everything: reports, call detail, recordings, pause/unpause an agent, hang
up a call) or ``viewer`` (the wallboard only).  ``secret`` signs the session cookies; empty (the
default) means one is generated at the first start and kept in var/web.secret.
``sl_target``: the service level (percent answered within the queue's service_level) the
wallboard compares today's figure with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbxcore.config_checker import Checker

WEB_KEYS = ("listen", "secret", "session_hours", "sl_target", "users")
WEB_USER_KEYS = ("name", "password_hash", "role")
ROLES = ("supervisor", "viewer")
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
_NAME = re.compile(r"^[A-Za-z0-9_.@+\-]{1,64}$")


@dataclass(frozen=True)
class WebUser:
    name: str
    password_hash: str = field(repr=False)  # argon2id, "$argon2id$v=19$..." (pbx web passwd)
    role: str = "viewer"  # supervisor | viewer


@dataclass(frozen=True)
class WebConfig:
    host: str | None = None  # [web] listen, split; None = no web server
    port: int = 0
    secret: str = field(default="", repr=False)  # "" = generated, kept in var/web.secret
    session_hours: float = 12.0
    sl_target: float = 80.0  # percent: the wallboard's SL goal (answered within service_level)
    users: tuple[WebUser, ...] = ()

    def user(self, name: str) -> WebUser | None:
        return next((u for u in self.users if u.name == name), None)


def check_web(c: Checker, doc: dict[str, Any]) -> WebConfig:
    web = c.table(doc, "web")
    where = ("web", "[web]", 0)
    listen = c.get(web, "listen", str, "", where)
    host: str | None = None
    port = 0
    if listen:
        m = _HOSTPORT.match(listen)
        if not m or not 1 <= int(m.group(2)) <= 65535:
            c.fail("web", f"listen {listen!r} in [web] must be HOST:PORT with PORT 1-65535 "
                   "(or \"\" for no web server)", "listen")
        else:
            host, port = m.group(1).strip("[]"), int(m.group(2))
    secret = c.get(web, "secret", str, "", where)
    if secret and len(secret) < 16:
        c.fail("web", "secret in [web] must be at least 16 characters (or \"\": generated)",
               "secret")
    hours = c.get(web, "session_hours", (int, float), 12.0, where)
    if not 0 < hours <= 24 * 30:
        c.fail("web", f"session_hours {hours} in [web] must be more than 0 and at most 720",
               "session_hours")
        hours = 12.0
    target = c.get(web, "sl_target", (int, float), 80.0, where)
    if not 0 < target <= 100:
        c.fail("web", f"sl_target {target} in [web] must be a percentage, more than 0 and at "
               "most 100", "sl_target")
        target = 80.0
    raw = web.get("users", [])
    users: list[WebUser] = []
    if not isinstance(raw, list) or not all(isinstance(u, dict) for u in raw):
        c.fail("web", "users in [web] must be an array of tables ([[web.users]])", "users")
        raw = []
    for i, u in enumerate(raw):
        uw = ("web.users", f"[[web.users]] #{i + 1}", i)
        c.unknown(u, "web.users", uw[1], i)
        name = c.get(u, "name", str, "", uw)
        if not _NAME.match(name):
            c.fail("web.users", f"name in {uw[1]} must be 1-64 letters, digits or _.@+-",
                   "name", i)
            continue
        if any(o.name == name for o in users):
            c.fail("web.users", f"duplicate name {name!r} in {uw[1]}", "name", i)
        hashed = c.get(u, "password_hash", str, "", uw)
        if not hashed.startswith("$argon2"):
            c.fail("web.users", f"password_hash in {uw[1]} must be an argon2 hash: make one "
                   "with `pbx web passwd`", "password_hash", i)
        role = c.get(u, "role", str, "viewer", uw)
        if role not in ROLES:
            c.fail("web.users", f"role {role!r} in {uw[1]} must be one of {', '.join(ROLES)}",
                   "role", i)
        users.append(WebUser(name, hashed, role))
    if host is not None and not users:
        c.warn("web", "[web] listen is set but there are no [[web.users]]: nobody can log in "
               "(add one with a hash from `pbx web passwd`)", "listen")
    return WebConfig(host, port, secret, float(hours), float(target), tuple(users))
