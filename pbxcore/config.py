"""pbx.toml: load, validate and describe the switch's configuration.

Theory of operation: the file is parsed with tomllib, then every section is checked and *every*
problem is collected (an admin fixing a config wants the whole list, not one error per run).
Each problem carries the line it belongs to; tomllib does not keep positions for values, so
``config_checker.Locator`` finds them again in the text: the Nth ``[[routes]]`` header, then the ``key =`` line
inside that table. Relative paths are relative to the directory holding the config file, so
``pbx run --config examples/demo/pbx.toml`` works from any working directory.

The sections live beside it: ``config_checker`` (the line-keeping checker), ``config_routes``,
``config_trunks``, ``config_queues``, ``config_voicemail``, ``config_originate``, ``config_ops``,
``config_web`` and ``config_cluster``; this module holds the small sections and `Config`.
"""

from __future__ import annotations

import os
import pwd
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxcore.acd.spec import QueueSpec
from pbxcore.config_checker import Checker, Problem
from pbxcore.config_cluster import CLUSTER_KEYS, ClusterConfig, check_cluster
from pbxcore.config_ops import LOG_KEYS, METRICS_KEYS, MONITOR_KEYS, OpsConfig, check_ops
from pbxcore.config_originate import ORIGINATE_KEYS, OriginateConfig, check_originate
from pbxcore.config_queues import AGENT_KEYS, QUEUE_KEYS, AgentsConfig, check_agents, check_queues
from pbxcore.config_routes import ROUTE_KEYS, Route, check_route
from pbxcore.config_trunks import TRUNK_KEYS, Trunk, check_trunks
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
from pbxcore.sip.admission import is_ip_network
from pbxcore.sip.digest import ALGORITHMS

__all__ = [
    "AgentsConfig", "Config", "ConfigError", "Limits", "ListenAddress", "MediaConfig", "Paths",
    "Problem", "QueueSpec", "Route", "ScriptsConfig", "SipConfig", "Trunk", "User",
    "check_prompts", "load_config", "parse_listen", "read_control_path", "read_store_dsn",
]

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
    "routes": set(ROUTE_KEYS),
    "trunks": set(TRUNK_KEYS),
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


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
        line = int(m.group(1)) if m else len(text.splitlines())
        raise ConfigError([(path, line, f"TOML syntax: {reason}")]) from None


def _check(path: Path, text: str) -> Config:
    c = Checker(path, text, _SCHEMA)
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
            route = check_route(c, r, i, paths)
            if route and "name" in r and route.name in names:
                c.fail("routes", f"route name {route.name!r} is used twice", "name", i)
            if route:
                names.add(route.name)
                routes.append(route)
    trunks = check_trunks(c, doc)
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
    c = Checker(p, text, _SCHEMA)
    dsn = _check_dsn(c, _parse(p, text))
    if c.problems:
        raise ConfigError(c.problems)
    return dsn


def read_control_path(path: str | os.PathLike[str]) -> Path:
    """Only [paths] control (absolute): `pbx reload` must find the socket of a switch whose
    config on disk is broken now."""
    p, text = _read(path)
    c = Checker(p, text, _SCHEMA)
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


_Checker = Checker  # the name the section modules' type hints import
