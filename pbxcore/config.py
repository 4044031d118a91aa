"""pbx.toml: load, validate and describe the switch's configuration.

Theory of operation: the file is parsed with tomllib, then every section is checked and *every*
problem is collected (an admin fixing a config wants the whole list, not one error per run).
Each problem carries the line it belongs to; tomllib does not keep positions for values, so
``_Locator`` finds them again in the text: the Nth ``[[routes]]`` header, then the ``key =`` line
inside that table. Relative paths are relative to the directory holding the config file, so
``pbx run --config examples/demo/pbx.toml`` works from any working directory.

Routing: ``Config.route_for`` uses ``re.search`` with the pattern exactly as written, so anchor it
(``^100$``) when a whole-number match is meant; the first matching route wins.
"""

from __future__ import annotations

import difflib
import os
import pwd
import re
import socket
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxcore.acd.spec import QueueSpec
from pbxcore.config_cluster import CLUSTER_KEYS, ClusterConfig, check_cluster
from pbxcore.config_ops import LOG_KEYS, METRICS_KEYS, MONITOR_KEYS, OpsConfig, check_ops
from pbxcore.config_originate import ORIGINATE_KEYS, OriginateConfig, check_originate
from pbxcore.config_queues import AGENT_KEYS, QUEUE_KEYS, AgentsConfig, check_agents, check_queues
from pbxcore.config_voicemail import (
    VOICEMAIL_ACCESS_KEYS,
    VOICEMAIL_KEYS,
    VoicemailAccess,
    VoicemailBox,
    check_voicemail,
    check_voicemail_access,
)
from pbxcore.config_web import WEB_KEYS, WEB_USER_KEYS, WebConfig, check_web
from pbxcore.media.wav import check_wav
from pbxcore.script.actions import ActionError, parse_action_line
from pbxcore.sip.admission import is_ip_network
from pbxcore.sip.digest import ALGORITHMS

__all__ = [
    "AgentsConfig", "Config", "ConfigError", "Limits", "ListenAddress", "MediaConfig", "Paths",
    "Problem", "QueueSpec", "Route", "ScriptsConfig", "SipConfig", "Trunk", "User",
    "check_prompts", "load_config", "parse_listen", "read_control_path", "read_store_dsn",
]

Problem = tuple[Path, int, str]
"""(file, line, reason); line 0 means the problem is about the file as a whole."""


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists every reason, one per line of str()."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(format_problem(p) for p in problems))


def format_problem(problem: Problem) -> str:
    path, line, reason = problem
    return f"{path}:{line}: {reason}" if line else f"{path}: {reason}"


@dataclass(frozen=True)
class ListenAddress:
    transport: str  # "udp" or "tcp"
    host: str
    port: int
    line: int = field(default=0, compare=False)  # of `listen =` in the file; 0: not from it


@dataclass(frozen=True)
class Limits:
    """[limits]: what one source address may take (issue 9 item 6); docs/configuration.md."""

    tcp_per_source: int = 64  # open TCP connections per source address
    tcp_total: int = 4096  # open TCP connections in all (also capped by RLIMIT_NOFILE - fd_reserve)
    tcp_idle: float = 32.0  # seconds a TCP connection may go without a complete SIP message
    requests_per_source: int = 200  # SIP messages per source per window; 0: no rate limit
    window: float = 2.0  # seconds
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1")  # exempt (trunk hosts are added)
    fd_reserve: int = 256  # descriptors kept free for scripts, RTP sockets and the store


@dataclass(frozen=True)
class SipConfig:
    listen: tuple[ListenAddress, ...]
    realm: str  # digest realm offered in 401 challenges (RFC 3261 §22.4)
    # digest algorithms offered in 401 challenges, most preferred first (RFC 8760 §2.4)
    digest_algorithms: tuple[str, ...] = ("MD5",)


@dataclass(frozen=True)
class MediaConfig:
    rtp_low: int  # first RTP port (even, RFC 3550 §11)
    rtp_high: int  # last port of the range, inclusive
    host: str  # address written into SDP c= lines


@dataclass(frozen=True)
class Paths:
    scripts: Path
    sounds: Path
    recordings: Path
    control: Path  # the control socket `pbx run` serves and `pbx calls` & co. talk to


@dataclass(frozen=True)
class ScriptsConfig:
    user: str | None = None  # run scripts and workers as this user (None: as the switch)
    uid: int | None = None  # the user's uid and primary gid, resolved at load
    gid: int | None = None


@dataclass(frozen=True)
class User:
    extension: str
    password: str = field(repr=False)  # kept out of logs and tracebacks
    name: str | None = None


@dataclass(frozen=True)
class Route:
    match: re.Pattern[str]  # applied with re.search to the called number
    script: Path  # absolute
    timeout: float  # seconds per script run
    fallback: tuple[str, ...]  # action lines run when the script fails
    language: str  # sub-directory of sounds/ for prompts
    public: bool  # True: callers need no digest auth (trunk routes)
    env: Mapping[str, str]  # extra environment passed to the script
    hangup_event: bool  # False: no final hangup event spawn
    hold_music: str | None  # sound played while a script runs after answer
    index: int  # 0-based position in the file ([[routes]] #index+1)
    transport: str = "process"  # "process" (script), "worker" (worker) or "webhook" (url)
    worker: Path | None = None  # absolute path of the worker program (transport "worker")
    workers: int = 2  # worker pool size, 1..64
    url: str | None = None  # http:// or https:// URL events are POSTed to (transport "webhook")
    secret: str | None = field(default=None, repr=False)  # webhook HMAC-SHA256 key
    # dial/transfer targets allowed (re.fullmatch); None: the switch's own extensions only
    dial_allow: tuple[re.Pattern[str], ...] | None = None
    name: str = ""  # the script's PBX_ROUTE; defaults to the match pattern
    agent_control: bool = False  # the `agent` action (login/logout/pause agents) is allowed


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


@dataclass(frozen=True)
class Config:
    path: Path  # absolute path of the pbx.toml that was loaded
    sip: SipConfig
    media: MediaConfig
    paths: Paths
    store_dsn: str  # sqlite:// paths already made absolute
    users: tuple[User, ...]
    routes: tuple[Route, ...]
    trunks: tuple[Trunk, ...] = ()
    queues: tuple[QueueSpec, ...] = ()  # [[queues]], in file order (pbxcore.acd.spec)
    agents: AgentsConfig = field(default_factory=AgentsConfig)  # [agents] feature codes
    ops: OpsConfig = field(default_factory=OpsConfig)  # [monitor], [metrics], [log]
    node: str = ""  # [node] id: written on every CDR; start-up closes this node's open ones
    scripts: ScriptsConfig = field(default_factory=ScriptsConfig)
    # Problems that do not stop the switch (a route's program missing or not executable: its
    # calls get the route's fallback; a queue's alert program missing): `pbx check` prints them
    # as warnings, `pbx run` logs them, hot reload refuses a change that adds one.
    warnings: tuple[Problem, ...] = ()
    limits: Limits = field(default_factory=Limits)
    web: WebConfig = field(default_factory=WebConfig)  # [web], [[web.users]]
    originate: OriginateConfig = field(default_factory=OriginateConfig)  # [originate]
    voicemail: tuple[VoicemailBox, ...] = ()  # [[voicemail]] boxes (config_voicemail.py)
    voicemail_access: VoicemailAccess = field(default_factory=VoicemailAccess)
    cluster: ClusterConfig | None = None  # [cluster]: None = this node runs alone

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def route_for(self, called: str) -> Route | None:
        """The first route whose pattern re.search-es the called number, or None."""
        return next((r for r in self.routes if r.match.search(called)), None)

    def user(self, extension: str) -> User | None:
        return next((u for u in self.users if u.extension == extension), None)

    def queue(self, name: str) -> QueueSpec | None:
        return next((q for q in self.queues if q.name == name), None)

    def voicemail_box(self, box: str) -> VoicemailBox | None:
        return next((b for b in self.voicemail if b.box == box), None)

    def voicemail_owned(self, extension: str) -> tuple[VoicemailBox, ...]:
        """The boxes `extension` owns, in file order."""
        return tuple(b for b in self.voicemail if extension in b.owners)

    def trunk(self, name: str) -> Trunk | None:
        return next((t for t in self.trunks if t.name == name), None)

    def trunk_for_number(self, number: str) -> Trunk | None:
        """The first trunk whose `match` re.search-es the number dialled out, or None."""
        return next((t for t in self.trunks if t.match and t.match.search(number)), None)


# ---------------------------------------------------------------- locating lines in the text

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")


class _Locator:
    """Maps (table, occurrence, key) back to a line number of the TOML text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # (table name, occurrence among same-named headers, first line, last line), 1-based
        self.tables: list[tuple[str, int, int, int]] = []
        seen: dict[str, int] = {}
        start, name = 1, ""
        for no, line in enumerate(self.lines, 1):
            m = _HEADER.match(line)
            if m:
                self._close(name, seen, start, no - 1)
                name, start = m.group(2).replace(" ", ""), no
        self._close(name, seen, start, len(self.lines))

    def _close(self, name: str, seen: dict[str, int], start: int, end: int) -> None:
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        self.tables.append((name, occurrence, start, end))

    def line(self, table: str, occurrence: int = 0, key: str | None = None) -> int:
        for name, occ, start, end in self.tables:
            if name == table and occ == occurrence:
                if key is not None:
                    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
                    for no in range(start, end + 1):
                        if pattern.match(self.lines[no - 1]):
                            return no
                return start if table else 1
        return 1


# ---------------------------------------------------------------- validation

_SCHEMA: dict[str, set[str]] = {
    "": {"sip", "media", "paths", "store", "users", "routes", "trunks", "queues", "agents",
         "node", "scripts", "limits", "monitor", "metrics", "log", "web",
         "originate", "voicemail",
         "voicemail_access", "cluster"},
    "node": {"id"},
    "scripts": {"user"},
    "sip": {"listen", "realm", "digest_algorithms"},
    "media": {"rtp_ports", "host"},
    "paths": {"scripts", "sounds", "recordings", "control"},
    "store": {"dsn"},
    "limits": {"tcp_per_source", "tcp_total", "tcp_idle", "requests_per_source", "window",
               "trusted", "fd_reserve"},
    "users": {"extension", "password", "name"},
    "routes": {"name", "match", "script", "timeout", "fallback", "language", "public", "env",
               "hangup_event", "hold_music", "worker", "workers", "url", "secret",
               "dial_allow", "agent_control"},
    "trunks": {"name", "host", "port", "transport", "username", "password", "register",
               "expires", "domain", "from_user", "match", "prefix"},
    "queues": set(QUEUE_KEYS),
    "agents": set(AGENT_KEYS),
    "monitor": set(MONITOR_KEYS),
    "cluster": set(CLUSTER_KEYS),
    "metrics": set(METRICS_KEYS),
    "log": set(LOG_KEYS),
    "web": set(WEB_KEYS),
    "web.users": set(WEB_USER_KEYS),
    "originate": set(ORIGINATE_KEYS),
    "voicemail": set(VOICEMAIL_KEYS),
    "voicemail_access": set(VOICEMAIL_ACCESS_KEYS),
}
_LISTEN = re.compile(r"^(udp|tcp):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
_EXTENSION = re.compile(r"^[A-Za-z0-9_.+\-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.base = path, path.parent
        self.loc = _Locator(text)
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def fail(self, table: str, reason: str, key: str | None = None, occurrence: int = 0) -> None:
        self.problems.append((self.path, self.loc.line(table, occurrence, key), reason))

    def warn(self, table: str, reason: str, key: str | None = None, occurrence: int = 0) -> None:
        self.warnings.append((self.path, self.loc.line(table, occurrence, key), reason))

    def table(self, doc: dict[str, Any], name: str) -> dict[str, Any]:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            self.fail("", f"'{name}' must be a table ([{name}])", name)
            return {}
        self.unknown(value, name, f"[{name}]")
        return value

    def unknown(self, table: dict[str, Any], kind: str, where: str, occurrence: int = 0) -> None:
        for key in table:
            if key not in _SCHEMA[kind]:
                close = difflib.get_close_matches(key, sorted(_SCHEMA[kind]), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                self.fail(kind, f"unknown key '{key}' in {where}{hint}", key, occurrence)

    def get(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
            where: tuple[str, str, int]) -> Any:
        """table[key] if it has the right type (bool is not a number here), else the default."""
        if key not in table:
            return default
        value = table[key]
        wrong_bool = isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
        if wrong_bool or not isinstance(value, kind):
            names = {str: "a string", bool: "true or false", list: "a list", dict: "a table",
                     int: "a number", float: "a number"}
            want = names.get(kind if isinstance(kind, type) else kind[0], "valid")
            self.fail(where[0], f"{key} in {where[1]} must be {want}", key, where[2])
            return default
        return value

    def resolve(self, raw: str) -> Path:
        return (self.base / raw).resolve() if not Path(raw).is_absolute() else Path(raw)

    def program(self, table: str, d: dict[str, Any], key: str, where: tuple[str, str, int],
                events: str) -> str | None:
        """An optional program run beside the calls (a queue's `alert`, a box's `notify`): its
        path, resolved.  Missing or not executable is a warning, not an error: the calls go on,
        only its `events` cannot be sent."""
        raw = self.get(d, key, str, None, where)
        if raw is None:
            return None
        if not raw:
            self.fail(table, f"{key} in {where[1]} must be a program path", key, where[2])
            return None
        path = self.resolve(raw)
        line = self.loc.line(table, where[2], key)
        if not path.is_file():
            self.warnings.append((self.path, line, f"{key} program {raw} does not exist: "
                                  f"{events} of {where[1]} cannot be sent"))
        elif not os.access(path, os.X_OK):
            self.warnings.append((self.path, line, f"{key} program {raw} is not executable "
                                  f"(chmod +x): {events} of {where[1]} cannot be sent"))
        return str(path)


def _check_sip(c: _Checker, doc: dict[str, Any]) -> SipConfig:
    sip = c.table(doc, "sip")
    where = ("sip", "[sip]", 0)
    raw = c.get(sip, "listen", list, ["udp:127.0.0.1:5060"], where)
    listen: list[ListenAddress] = []
    line = c.loc.line("sip", 0, "listen") if "listen" in sip else 0
    for item in raw:
        address = parse_listen(item, line) if isinstance(item, str) else None
        if address is None:
            c.fail("sip", f"listen address {item!r} must be udp|tcp:HOST:PORT with PORT 1-65535",
                   "listen")
            continue
        listen.append(address)
    if not raw:
        c.fail("sip", "listen needs at least one address", "listen")
    realm = c.get(sip, "realm", str, "pbxcore", where)
    if not realm or '"' in realm:
        c.fail("sip", "realm must be a non-empty string without quotes", "realm")
    return SipConfig(tuple(listen), realm, _check_digest_algorithms(c, sip, where))


def _check_digest_algorithms(c: _Checker, sip: dict[str, Any],
                             where: tuple[str, str, int]) -> tuple[str, ...]:
    """`digest_algorithms = ["MD5"]`: known names, no repeats, at least one; order kept."""
    raw = c.get(sip, "digest_algorithms", list, ["MD5"], where)
    names = [a.upper() for a in raw if isinstance(a, str)]
    known = ", ".join(f'"{a}"' for a in ALGORITHMS)
    bad = [a for a in raw if not isinstance(a, str) or a.upper() not in ALGORITHMS]
    if bad or not raw or len(set(names)) != len(names):
        c.fail("sip", f"digest_algorithms must list one or more of {known}, each once "
               f"(got {raw!r})", "digest_algorithms")
        return ("MD5",)
    return tuple(names)


def parse_listen(text: str, line: int = 0) -> ListenAddress | None:
    """`udp:127.0.0.1:5060` (also `pbx run --listen`), or None when it is not one."""
    m = _LISTEN.match(text)
    if not m or not 1 <= int(m.group(3)) <= 65535:
        return None
    return ListenAddress(m.group(1), m.group(2).strip("[]"), int(m.group(3)), line)


def _check_media(c: _Checker, doc: dict[str, Any], sip: SipConfig) -> MediaConfig:
    media = c.table(doc, "media")
    where = ("media", "[media]", 0)
    ports = c.get(media, "rtp_ports", str, "20000-20999", where)
    m = re.fullmatch(r"(\d{1,5})-(\d{1,5})", ports)
    low, high = (int(m.group(1)), int(m.group(2))) if m else (20000, 20999)
    if not m or not 1024 <= low < high <= 65535 or low % 2:
        c.fail("media", f"rtp_ports {ports!r} must be 'LOW-HIGH' with LOW even, "
               "1024 <= LOW < HIGH <= 65535", "rtp_ports")
    first = sip.listen[0].host if sip.listen else "127.0.0.1"
    host = c.get(media, "host", str, first, where)
    if host in ("0.0.0.0", "::") and "host" not in media:
        c.fail("media", f"listening on {host}: set host = the address phones reach for RTP",
               None)
    return MediaConfig(low, high, host)


def _check_paths(c: _Checker, doc: dict[str, Any]) -> Paths:
    paths = c.table(doc, "paths")
    where = ("paths", "[paths]", 0)
    got = {k: c.resolve(c.get(paths, k, str, d, where))
           for k, d in (("scripts", "scripts"), ("sounds", "sounds"),
                        ("recordings", "var/recordings"), ("control", "var/pbx.sock"))}
    if len(os.fsencode(got["control"])) > 107:  # sun_path holds 108 bytes with the NUL
        c.fail("paths", f"control {str(got['control'])!r} is longer than 107 bytes, the limit "
               "of a Unix socket path: choose a shorter one", "control")
    return Paths(got["scripts"], got["sounds"], got["recordings"], got["control"])


def _check_dsn(c: _Checker, doc: dict[str, Any]) -> str:
    store = c.table(doc, "store")
    dsn: str = c.get(store, "dsn", str, "sqlite:///var/pbx.db", ("store", "[store]", 0))
    if dsn.startswith("sqlite:///"):
        rest = dsn[len("sqlite:///"):]
        if not rest:
            c.fail("store", "dsn sqlite:/// needs a file name", "dsn")
        return "sqlite:///" + str(c.resolve(rest)) if rest else dsn  # sqlite:////abs/file.db
    if not dsn.startswith(("postgresql://", "postgres://", "memory://")):
        c.fail("store", f"dsn {dsn!r} must start with sqlite:/// or postgresql://", "dsn")
    return dsn


_NODE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _check_node(c: _Checker, doc: dict[str, Any]) -> str:
    node = c.table(doc, "node")
    default = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname())[:64] or "pbx"
    value: str = c.get(node, "id", str, default, ("node", "[node]", 0))
    if not _NODE_ID.match(value):
        c.fail("node", f"id {value!r} in [node] must be 1-64 of A-Z a-z 0-9 _ . -", "id")
    return value


def _check_scripts(c: _Checker, doc: dict[str, Any]) -> ScriptsConfig:
    table = c.table(doc, "scripts")
    name = c.get(table, "user", str, None, ("scripts", "[scripts]", 0))
    if name is None:
        return ScriptsConfig()
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        c.fail("scripts", f"user {name!r} in [scripts] does not exist on this system", "user")
        return ScriptsConfig()
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        c.fail("scripts", f"user {name!r} in [scripts]: only a switch started as root can run "
               "scripts as another user", "user")
    return ScriptsConfig(name, entry.pw_uid, entry.pw_gid)


def _check_users(c: _Checker, doc: dict[str, Any]) -> tuple[User, ...]:
    raw = doc.get("users", [])
    if not isinstance(raw, list):
        c.fail("", "users must be an array of tables ([[users]])", "users")
        return ()
    users: list[User] = []
    for i, u in enumerate(raw):
        where = ("users", f"[[users]] #{i + 1}", i)
        if not isinstance(u, dict):
            c.fail("", "users must be an array of tables ([[users]])", "users")
            continue
        c.unknown(u, "users", where[1], i)
        ext = u.get("extension")
        if not isinstance(ext, str) or not _EXTENSION.match(ext):
            c.fail("users", f"extension in {where[1]} must be a string of letters, digits or "
                   f"_.+- (quote numbers: extension = \"1001\"), not {ext!r}", "extension", i)
            continue
        if any(other.extension == ext for other in users):
            c.fail("users", f"duplicate extension {ext!r} in {where[1]}", "extension", i)
        password = c.get(u, "password", str, "", where)
        if not password:
            c.fail("users", f"password in {where[1]} must be a non-empty string", "password", i)
        users.append(User(ext, password, c.get(u, "name", str, None, where)))
    return tuple(users)


def _check_route(c: _Checker, r: dict[str, Any], i: int, paths: Paths) -> Route | None:
    where = ("routes", f"[[routes]] #{i + 1}", i)
    c.unknown(r, "routes", where[1], i)
    pattern = None
    if not isinstance(r.get("match"), str):
        c.fail("routes", f"{where[1]} needs match = \"REGEX\" (a string)", "match", i)
    else:
        try:
            pattern = re.compile(r["match"])
        except re.error as e:
            c.fail("routes", f"match {r['match']!r} is not a valid regular expression: {e}",
                   "match", i)
    script, transport = _check_handler(c, r, i)
    timeout = c.get(r, "timeout", (int, float), 5.0, where)
    if not 0.1 <= timeout <= 60:
        c.fail("routes", f"timeout {timeout} in {where[1]} must be 0.1..60 seconds", "timeout", i)
    fallback = c.get(r, "fallback", list, ["hangup"], where)
    for line in fallback:
        reason = _action_problem(line)
        if reason:
            c.fail("routes", f"fallback {line!r} in {where[1]}: {reason}", "fallback", i)
    language = c.get(r, "language", str, "en", where)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", language) or not (paths.sounds / language).is_dir():
        c.fail("routes", f"language {language!r}: no directory {paths.sounds / language}",
               "language", i)
    env = c.get(r, "env", dict, {}, where)
    for name, value in env.items():
        if not _ENV_NAME.match(name) or name.startswith("PBX_") or not isinstance(value, str):
            c.fail("routes", f"env {name} in {where[1]}: names are [A-Za-z_][A-Za-z0-9_]*, not "
                   "PBX_* (reserved), values are strings", "env", i)
    hold = c.get(r, "hold_music", str, None, where)
    if hold is not None and (not hold or hold.startswith("/") or ".." in Path(hold).parts):
        c.fail("routes", f"hold_music {hold!r} must name a sound under sounds/", "hold_music", i)
    elif hold is not None:
        # Same lookup as pbxcore.media.sounds: sounds/<language>/NAME.wav, then sounds/NAME.wav.
        file = hold if hold.endswith(".wav") else hold + ".wav"
        if not any((paths.sounds / sub / file).is_file() for sub in (language, ".")):
            c.fail("routes", f"hold_music {hold!r}: no {paths.sounds / language / file} or "
                   f"{paths.sounds / file}", "hold_music", i)
    public = c.get(r, "public", bool, False, where)
    hangup_event = c.get(r, "hangup_event", bool, True, where)
    workers = c.get(r, "workers", int, 2, where)
    if not 1 <= workers <= 64:
        c.fail("routes", f"workers {workers} in {where[1]} must be 1..64", "workers", i)
    if "workers" in r and transport != "worker":
        c.fail("routes", f"workers in {where[1]} needs worker = \"PATH\"", "workers", i)
    secret = c.get(r, "secret", str, None, where)
    if secret is not None and transport != "webhook":
        c.fail("routes", f"secret in {where[1]} needs url = \"http://...\"", "secret", i)
    elif secret == "":
        c.fail("routes", f"secret in {where[1]} must not be empty", "secret", i)
    dial_allow = _check_dial_allow(c, r, i, where)
    name = c.get(r, "name", str, r.get("match") if isinstance(r.get("match"), str) else "", where)
    if "name" in r and not re.fullmatch(r"[\w.\-]{1,64}", name):
        c.fail("routes", f"name {name!r} in {where[1]} must be 1..64 letters, digits, _ . -",
               "name", i)
    agent_control = c.get(r, "agent_control", bool, False, where)
    if pattern is None or script is None:
        return None
    return Route(pattern, script, float(timeout), tuple(str(x) for x in fallback), language,
                 public, types.MappingProxyType(dict(env)), hangup_event, hold, i,
                 transport=transport, worker=script if transport == "worker" else None,
                 workers=workers, url=r["url"] if transport == "webhook" else None,
                 secret=secret, dial_allow=dial_allow, name=name,
                 agent_control=agent_control)


def _check_dial_allow(c: _Checker, r: dict[str, Any], i: int,
                      where: tuple[str, str, int]) -> tuple[re.Pattern[str], ...] | None:
    """`dial_allow = ["^1\\d{3}$", ...]`: what a script on this route may dial (toll fraud
    through a script bug is the classic PBX disaster, so the default is internal only)."""
    raw = c.get(r, "dial_allow", list, None, where)
    if raw is None:
        return None
    patterns: list[re.Pattern[str]] = []
    for item in raw:
        if not isinstance(item, str):
            c.fail("routes", f"dial_allow in {where[1]}: {item!r} is not a string",
                   "dial_allow", i)
            continue
        try:
            patterns.append(re.compile(item))
        except re.error as e:
            c.fail("routes", f"dial_allow {item!r} in {where[1]} is not a valid regular "
                   f"expression: {e}", "dial_allow", i)
    return tuple(patterns)


_HANDLERS = (("script", "process"), ("worker", "worker"), ("url", "webhook"))
_URL = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?(/[^\s#]*)?$")


def _check_handler(c: _Checker, r: dict[str, Any], i: int) -> tuple[Path | None, str]:
    """The route's script, worker or url: exactly one.  Returns (Route.script, transport).

    Route.script names what handles the route in traces, CDRs and the engine's "is this still
    the route's own handler" test: the script or worker file, or Path(url) for a webhook.
    """
    where = f"[[routes]] #{i + 1}"
    given = [(key, kind) for key, kind in _HANDLERS if key in r]
    if not given:
        c.fail("routes", f"{where} needs script = \"PATH\" (a string), or worker = \"PATH\" "
               "or url = \"http://...\"", None, i)
        return None, "process"
    if len(given) > 1:
        names = " and ".join(key for key, _ in given)
        c.fail("routes", f"{where} has {names}: give exactly one of script, worker, url",
               given[1][0], i)
        return None, given[0][1]
    key, transport = given[0]
    value = r[key]
    if not isinstance(value, str) or not value:
        want = "\"http://...\"" if key == "url" else "\"PATH\""
        c.fail("routes", f"{where} needs {key} = {want} (a string)", key, i)
        return None, transport
    if key == "url":
        m = _URL.match(value)
        if not m or (m.group(2) and not 1 <= int(m.group(2)[1:]) <= 65535):
            c.fail("routes", f"url {value!r} in {where} must be http://HOST[:PORT][/PATH] or "
                   "https://...", "url", i)
            return None, transport
        return Path(value), transport
    path = c.resolve(value)
    # Only a warning: the program may appear later, and one broken route must not keep the
    # switch from serving the others (its calls get the route's fallback, as at run time).
    if not path.is_file():
        c.warn("routes", f"{key} {value} does not exist", key, i)
    elif not os.access(path, os.X_OK):
        c.warn("routes", f"{key} {value} is not executable (chmod +x)", key, i)
    return path, transport


_TRUNK_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+|[A-Za-z0-9_][A-Za-z0-9_.\-]*)$")
_SIP_USER = re.compile(r"^[^\s\"<>@:;,?]+$")  # nothing that would break out of a SIP URI user
_PREFIX = re.compile(r"^[0-9+*#]*$")


def _check_trunks(c: _Checker, doc: dict[str, Any]) -> tuple[Trunk, ...]:
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


def _check_trunk(c: _Checker, t: dict[str, Any], i: int) -> Trunk | None:
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


def _check_limits(c: _Checker, doc: dict[str, Any]) -> Limits:
    """[limits]: every key optional; bounds keep a typo from disabling the protection."""
    table = c.table(doc, "limits")
    where = ("limits", "[limits]", 0)
    d = Limits()
    ints: dict[str, int] = {}
    for key, low, high in (("tcp_per_source", 1, 1_000_000), ("tcp_total", 1, 1_000_000),
                           ("requests_per_source", 0, 10_000_000), ("fd_reserve", 0, 1_000_000)):
        ints[key] = c.get(table, key, int, getattr(d, key), where)
        if not low <= ints[key] <= high:
            c.fail("limits", f"{key} {ints[key]} in [limits] must be {low}..{high}", key)
    secs: dict[str, float] = {}
    for key, lo, hi in (("tcp_idle", 1.0, 86400.0), ("window", 0.1, 3600.0)):
        secs[key] = float(c.get(table, key, (int, float), getattr(d, key), where))
        if not lo <= secs[key] <= hi:
            c.fail("limits", f"{key} {secs[key]:g} in [limits] must be {lo:g}..{hi:g} "
                   "seconds", key)
    trusted = c.get(table, "trusted", list, list(d.trusted), where)
    for entry in trusted:
        if not isinstance(entry, str) or not is_ip_network(entry):
            c.fail("limits", f"trusted entry {entry!r} in [limits] must be an IP address or "
                   "network (10.0.0.0/8)", "trusted")
    return Limits(ints["tcp_per_source"], ints["tcp_total"], secs["tcp_idle"],
                  ints["requests_per_source"], secs["window"],
                  tuple(str(e) for e in trusted), ints["fd_reserve"])


def _action_problem(line: object) -> str | None:
    if not isinstance(line, str):
        return "fallback entries must be strings"
    try:
        parse_action_line(line)
    except ActionError as e:
        return e.message
    return None


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
        line = int(m.group(1)) if m else len(text.splitlines())
        raise ConfigError([(path, line, f"TOML syntax: {reason}")]) from None


def _check(path: Path, text: str) -> Config:
    c = _Checker(path, text)
    doc = _parse(path, text)
    c.unknown(doc, "", "pbx.toml")
    sip = _check_sip(c, doc)
    media = _check_media(c, doc, sip)
    paths = _check_paths(c, doc)
    dsn = _check_dsn(c, doc)
    users = _check_users(c, doc)
    raw_routes = doc.get("routes", [])
    routes: list[Route] = []
    if not isinstance(raw_routes, list) or not all(isinstance(r, dict) for r in raw_routes):
        c.fail("", "routes must be an array of tables ([[routes]])", "routes")
    else:
        names: set[str] = set()
        for i, r in enumerate(raw_routes):
            route = _check_route(c, r, i, paths)
            if route and "name" in r and route.name in names:
                c.fail("routes", f"route name {route.name!r} is used twice", "name", i)
            if route:
                names.add(route.name)
                routes.append(route)
    trunks = _check_trunks(c, doc)
    queues = check_queues(c, doc, users, paths)
    agents = check_agents(c, doc)
    node = _check_node(c, doc)
    scripts = _check_scripts(c, doc)
    limits = _check_limits(c, doc)
    ops = check_ops(c, doc)
    web = check_web(c, doc)
    originate = check_originate(c, doc)
    voicemail = check_voicemail(c, doc, users, paths)
    voicemail_access = check_voicemail_access(c, doc)
    cluster = check_cluster(c, doc, node, dsn)
    if c.problems:
        raise ConfigError(c.problems)
    return Config(path, sip, media, paths, dsn, users, tuple(routes), trunks, queues=queues,
                  agents=agents, node=node, scripts=scripts, warnings=tuple(c.warnings),
                  limits=limits, ops=ops, web=web, originate=originate, voicemail=voicemail,
                  voicemail_access=voicemail_access, cluster=cluster)


def _read(path: str | os.PathLike[str]) -> tuple[Path, str]:
    p = Path(path).absolute()
    try:
        return p, p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([(p, 0, f"cannot read: {e}")]) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Parse and validate pbx.toml; raises ConfigError listing every problem found."""
    p, text = _read(path)
    return _check(p, text)


def read_store_dsn(path: str | os.PathLike[str]) -> str:
    """Only the [store] dsn (absolute for sqlite): lets `pbx cdr` work while routes are broken."""
    p, text = _read(path)
    c = _Checker(p, text)
    dsn = _check_dsn(c, _parse(p, text))
    if c.problems:
        raise ConfigError(c.problems)
    return dsn


def read_control_path(path: str | os.PathLike[str]) -> Path:
    """Only [paths] control (absolute): `pbx reload` must find the socket of a switch whose
    config on disk is broken now."""
    p, text = _read(path)
    c = _Checker(p, text)
    try:
        doc = _parse(p, text)
    except ConfigError:
        # A TOML syntax error elsewhere must not hide the socket of the running switch: take
        # the key from its line (or the default when the file does not set it).
        m = re.search(r'(?m)^\s*control\s*=\s*"([^"\n]*)"', text)
        doc = {"paths": {"control": m.group(1)}} if m else {}
    control = _check_paths(c, doc).control
    if c.problems:
        raise ConfigError(c.problems)
    return control


def check_prompts(config: Config) -> list[Problem]:
    """Problems with the WAV prompts under sounds/ (for `pbx check`), one per bad file."""
    problems: list[Problem] = []
    for wav in sorted(config.paths.sounds.rglob("*.wav")):
        reason = check_wav(wav)
        if reason:
            problems.append((wav, 0, reason))
    return problems
