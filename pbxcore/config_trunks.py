"""`[[trunks]]` in pbx.toml: a provider's SIP trunk, validated with file and line.

Called from ``pbxcore.config._check`` with its `Checker`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pbxcore.config_checker import Checker

TRUNK_KEYS = ("name", "host", "port", "transport", "username", "password", "register",
              "expires", "domain", "from_user", "match", "prefix")


@dataclass(frozen=True)
class Trunk:
    """A provider's SIP trunk ([[trunks]]): where it is, who we are to it, what goes out there."""

    name: str  # unique; names the trunk in logs and status
    host: str  # provider host name or IP (IPv6 without brackets): where requests go
    port: int
    transport: str  # "udp" or "tcp"
    username: str | None  # digest user, also the user part of our AOR and Contact
    password: str | None = field(repr=False)
    register: bool  # keep a binding at the provider's registrar (REGISTER)
    expires: int  # registration interval asked for, 60..86400 s
    domain: str  # AOR / registrar domain (RFC 3261 §10.2), defaults to host
    from_user: str | None  # user part of From on outbound calls, defaults to username
    match: re.Pattern[str] | None  # called numbers that leave through this trunk (re.search)
    prefix: str  # prepended to the called number on the way out
    index: int  # 0-based position in the file ([[trunks]] #index+1)


_TRUNK_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+|[A-Za-z0-9_][A-Za-z0-9_.\-]*)$")
_SIP_USER = re.compile(r"^[^\s\"<>@:;,?]+$")  # nothing that would break out of a SIP URI user
_PREFIX = re.compile(r"^[0-9+*#]*$")


def check_trunks(c: Checker, doc: dict[str, Any]) -> tuple[Trunk, ...]:
    raw = doc.get("trunks", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        c.fail("", "trunks must be an array of tables ([[trunks]])", "trunks")
        return ()
    trunks = [_check_trunk(c, t, i) for i, t in enumerate(raw)]
    seen: set[str] = set()
    for i, trunk in enumerate(trunks):
        if trunk is not None and trunk.name in seen:
            c.fail("trunks", f"duplicate trunk name {trunk.name!r} in [[trunks]] #{i + 1}",
                   "name", i)
        if trunk is not None:
            seen.add(trunk.name)
    return tuple(t for t in trunks if t is not None)


def _check_trunk(c: Checker, t: dict[str, Any], i: int) -> Trunk | None:
    where = ("trunks", f"[[trunks]] #{i + 1}", i)
    c.unknown(t, "trunks", where[1], i)
    before = len(c.problems)
    name = c.get(t, "name", str, "", where)
    if not _TRUNK_NAME.match(name):
        c.fail("trunks", f"{where[1]} needs name = \"NAME\" (letters, digits, _ or -)", "name", i)
    host = c.get(t, "host", str, "", where)
    if not _HOST.match(host):
        c.fail("trunks", f"host {host!r} in {where[1]} must be a host name or IP address", "host", i)
    domain = c.get(t, "domain", str, host, where)
    if "domain" in t and not _HOST.match(domain):
        c.fail("trunks", f"domain {domain!r} in {where[1]} must be a host name", "domain", i)
    port = c.get(t, "port", int, 5060, where)
    if not 1 <= port <= 65535:
        c.fail("trunks", f"port {port} in {where[1]} must be 1-65535", "port", i)
    transport = c.get(t, "transport", str, "udp", where)
    if transport not in ("udp", "tcp"):
        c.fail("trunks", f"transport {transport!r} in {where[1]} must be udp or tcp", "transport", i)
    username = c.get(t, "username", str, None, where)
    from_user = c.get(t, "from_user", str, username, where)
    for key, value in (("username", username), ("from_user", from_user)):
        if key in t and value is not None and not _SIP_USER.match(value):
            c.fail("trunks", f"{key} {value!r} in {where[1]} must be a SIP user name (no spaces, "
                   "quotes, <>@:;,?)", key, i)
    password = c.get(t, "password", str, None, where)
    if password is not None and (not password or any(ch in password for ch in "\r\n")):
        c.fail("trunks", f"password in {where[1]} must be a non-empty line", "password", i)
    register = c.get(t, "register", bool, username is not None, where)
    if register and (username is None or password is None):
        c.fail("trunks", f"register = true in {where[1]} needs username and password",
               "register" if "register" in t else None, i)
    expires = c.get(t, "expires", int, 300, where)
    if not 60 <= expires <= 86400:
        c.fail("trunks", f"expires {expires} in {where[1]} must be 60..86400 seconds", "expires", i)
    match = None
    text = c.get(t, "match", str, None, where)
    if text is not None:
        try:
            match = re.compile(text)
        except re.error as e:
            c.fail("trunks", f"match {text!r} is not a valid regular expression: {e}", "match", i)
    prefix = c.get(t, "prefix", str, "", where)
    if not _PREFIX.match(prefix):
        c.fail("trunks", f"prefix {prefix!r} in {where[1]} may hold only 0-9 + * #", "prefix", i)
    if len(c.problems) > before:
        return None
    return Trunk(name, host.strip("[]"), port, transport, username, password, register, expires,
                 domain.strip("[]"), from_user, match, prefix, i)
