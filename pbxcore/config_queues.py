"""`[[queues]]` and `[agents]` in pbx.toml: call-centre queues and the agents' feature codes.

Called from ``pbxcore.config._check`` with its ``Checker``, so every problem carries FILE:LINE
and is collected with the rest of the file's problems (docs/configuration.md lists every key).
The result is the shared contract ``pbxcore.acd.spec.QueueSpec`` (one per queue) and an
:class:`AgentsConfig`.  Most mistakes are errors; a missing or non-executable `alert` program is a
*warning*: calls still queue and are answered, only the supervisor alert cannot be sent, so it
should not keep the switch from starting (`pbx check` prints it, `pbx run` logs it).

Feature codes (Asterisk and FreeSWITCH ship none for queues, FreePBX uses ``*45``/``*46`` as
toggles, 3CX ``*62``/``*63``): we use four explicit codes, ``*71`` login, ``*72`` logout, ``*73``
pause, ``*74`` unpause, because a toggle leaves the agent guessing which state they are in.  The
pause code may be followed by digits, the reason: ``*732`` pauses with reason ``2``, or with the
name ``pause_reasons`` gives it (``{"2" = "lunch"}``).  Codes must be prefix-free, so ``*73`` plus
digits never shadows another code.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pbxcore.acd.spec import (
    ANNOUNCEMENTS,
    DEFAULT_STRATEGY,
    EMPTY_POLICIES,
    STRATEGIES,
    AlertThresholds,
    Announcement,
    Member,
    OverflowRule,
    QueueSpec,
)
from pbxcore.script.actions import ANNOUNCE

if TYPE_CHECKING:  # config.py imports this module; only its types are needed here
    from pbxcore.config import Paths, User
    from pbxcore.config_checker import Checker

__all__ = ["AGENT_KEYS", "AGENT_OPS", "QUEUE_KEYS", "AgentsConfig", "check_agents",
           "check_queues", "parse_announce", "queue_changes"]

QUEUE_KEYS = frozenset({
    "name", "strategy", "members", "ring_timeout", "retry", "wrapup", "max_wait", "max_len",
    "empty", "hold_music", "announce_every", "announce", "service_level", "autopause_after",
    "overflow", "alert_waiting", "alert_longest_wait", "alert_clear", "alert", "whisper",
    "callback_key", "callback_retries", "callback_retry_delay", "callback_allow",
})
AGENT_KEYS = frozenset({"login_code", "logout_code", "pause_code", "unpause_code",
                        "pause_reasons"})

AgentOp = Literal["login", "logout", "pause", "unpause"]
AGENT_OPS: tuple[AgentOp, ...] = ("login", "logout", "pause", "unpause")

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_MEMBER = re.compile(r"^([A-Za-z0-9_.+\-]+)(?::(\d{1,3}))?$")
_CODE = re.compile(r"^[0-9*#]{1,16}$")
_REASON = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_DTMF = "0123456789*#"


@dataclass(frozen=True)
class AgentsConfig:
    """`[agents]`: the feature codes an agent dials from their phone ("" = code switched off)."""

    login_code: str = "*71"
    logout_code: str = "*72"
    pause_code: str = "*73"  # may be followed by reason digits: *732
    unpause_code: str = "*74"
    pause_reasons: Mapping[str, str] = field(default_factory=dict)  # digits -> reason name

    def feature(self, dialled: str) -> tuple[AgentOp, str | None] | None:
        """The agent operation a dialled number asks for, with the pause reason, or None."""
        for op, code in zip(AGENT_OPS, self.codes(), strict=True):
            if code and dialled == code:
                return op, None
        code = self.pause_code
        rest = dialled[len(code):]
        if code and dialled.startswith(code) and rest.isdigit() and rest.isascii():
            return "pause", self.pause_reasons.get(rest, rest)
        return None

    def codes(self) -> tuple[str, str, str, str]:
        return self.login_code, self.logout_code, self.pause_code, self.unpause_code


def parse_announce(text: str) -> tuple[Announcement, ...] | None:
    """`position,wait` | `position` | `wait` | `none`: the same words as the `queue` action's
    announce= (one grammar for both); None when the text is none of these."""
    words = ANNOUNCE.get(text)
    return None if words is None else tuple(w for w in ANNOUNCEMENTS if w in words)  # type: ignore[misc]


def check_queues(c: Checker, doc: dict[str, Any], users: tuple[User, ...],
                 paths: Paths) -> tuple[QueueSpec, ...]:
    raw = doc.get("queues", [])
    if not isinstance(raw, list) or not all(isinstance(q, dict) for q in raw):
        c.fail("", "queues must be an array of tables ([[queues]])", "queues")
        return ()
    extensions = {u.extension for u in users}
    queues: list[QueueSpec] = []
    for i, q in enumerate(raw):
        spec = _check_queue(c, q, i, extensions, paths)
        if spec is None:
            continue
        if any(other.name == spec.name for other in queues):
            c.fail("queues", f"duplicate queue name {spec.name!r} in [[queues]] #{i + 1}",
                   "name", i)
            continue
        queues.append(spec)
    return tuple(queues)


def _seconds(c: Checker, q: dict[str, Any], key: str, default: float | None,
             where: tuple[str, str, int], *, positive: bool = False) -> float | None:
    value = c.get(q, key, (int, float), default, where)
    if value is None:
        return None
    if value < 0 or (positive and value == 0) or value > 86400:
        bound = "more than 0" if positive else "0 or more"
        c.fail("queues", f"{key} {value} in {where[1]} must be {bound} seconds (at most 86400)",
               key, where[2])
        return default
    return float(value)


def _count(c: Checker, q: dict[str, Any], key: str, default: int | None,
           where: tuple[str, str, int], low: int) -> int | None:
    value: int | None = c.get(q, key, int, default, where)
    if value is not None and not low <= value <= 100000:
        c.fail("queues", f"{key} {value} in {where[1]} must be {low}..100000", key, where[2])
        return default
    return value


def _check_queue(c: Checker, q: dict[str, Any], i: int, extensions: set[str],
                 paths: Paths) -> QueueSpec | None:
    where = ("queues", f"[[queues]] #{i + 1}", i)
    c.unknown(q, "queues", where[1], i)
    before = len(c.problems)
    name = c.get(q, "name", str, "", where)
    if not QUEUE_NAME.match(name):
        c.fail("queues", f"{where[1]} needs name = \"NAME\" (1..32 letters, digits, _ or -)",
               "name" if "name" in q else None, i)
    strategy = c.get(q, "strategy", str, DEFAULT_STRATEGY, where)
    if strategy not in STRATEGIES:
        c.fail("queues", f"strategy {strategy!r} in {where[1]} must be one of "
               f"{', '.join(STRATEGIES)}", "strategy", i)
    members = _members(c, q, where, extensions)
    ring_timeout = _seconds(c, q, "ring_timeout", 15.0, where, positive=True)
    retry = _seconds(c, q, "retry", 5.0, where)
    wrapup = _seconds(c, q, "wrapup", 0.0, where)
    max_wait = _seconds(c, q, "max_wait", None, where, positive=True)
    max_len = _count(c, q, "max_len", None, where, 1)
    empty = c.get(q, "empty", str, "join", where)
    if empty not in EMPTY_POLICIES:
        c.fail("queues", f"empty {empty!r} in {where[1]} must be join or leave", "empty", i)
    hold_music = c.get(q, "hold_music", str, "moh", where)
    if "hold_music" in q:
        _check_sound(c, hold_music, "hold_music", where, paths)
    announce_every = _seconds(c, q, "announce_every", None, where, positive=True)
    announce_text = c.get(q, "announce", str, "position,wait", where)
    announce = parse_announce(announce_text)
    if announce is None:
        c.fail("queues", f"announce {announce_text!r} in {where[1]} must be position,wait, "
               "position, wait or none", "announce", i)
    service_level = _seconds(c, q, "service_level", 20.0, where, positive=True)
    autopause = _count(c, q, "autopause_after", 0, where, 0)
    overflow = _overflow(c, q, where)
    alert = _alert(c, q, where)
    program = _alert_program(c, q, where, alert)
    whisper = c.get(q, "whisper", str, None, where)
    if whisper is not None:
        _check_sound(c, whisper, "whisper", where, paths)
    callback_key = c.get(q, "callback_key", str, None, where)
    if callback_key is not None and (len(callback_key) != 1 or callback_key not in _DTMF):
        c.fail("queues", f"callback_key {callback_key!r} in {where[1]} must be one DTMF key "
               "0-9 * #", "callback_key", i)
    callback_retries = _count(c, q, "callback_retries", 3, where, 0)
    callback_retry_delay = _seconds(c, q, "callback_retry_delay", 60.0, where, positive=True)
    callback_allow = _callback_allow(c, q, where)
    if len(c.problems) > before:
        return None
    assert ring_timeout is not None and retry is not None and wrapup is not None
    assert service_level is not None and autopause is not None and announce is not None
    assert callback_retries is not None and callback_retry_delay is not None
    return QueueSpec(
        name=name, strategy=strategy, members=members, ring_timeout=ring_timeout, retry=retry,
        wrapup=wrapup, max_wait=max_wait, max_len=max_len, empty=empty, hold_music=hold_music,
        announce_every=announce_every, announce=announce, service_level=service_level,
        autopause_after=autopause, overflow=overflow, alert=alert, alert_program=program,
        whisper=whisper, callback_key=callback_key, callback_retries=callback_retries,
        callback_retry_delay=callback_retry_delay, callback_allow=callback_allow)


def _callback_allow(c: Checker, q: dict[str, Any],
                    where: tuple[str, str, int]) -> tuple[str, ...] | None:
    """`callback_allow = ["^0\\d{9}$"]`: the numbers a callback may dial (each regex must match
    the whole number).  A callback dials a number the *caller* supplied, so it is the same toll
    fraud door as `dial_allow`; unset, only the switch's extensions and numbers a trunk routes."""
    raw = c.get(q, "callback_allow", list, None, where)
    if raw is None:
        return None
    out: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            c.fail("queues", f"callback_allow in {where[1]}: {item!r} is not a string",
                   "callback_allow", where[2])
            continue
        try:
            re.compile(item)
        except re.error as exc:
            c.fail("queues", f"callback_allow {item!r} in {where[1]} is not a valid regular "
                   f"expression: {exc}", "callback_allow", where[2])
            continue
        out.append(item)
    return tuple(out)


def _members(c: Checker, q: dict[str, Any], where: tuple[str, str, int],
             extensions: set[str]) -> tuple[Member, ...]:
    raw = c.get(q, "members", list, [], where)
    members: list[Member] = []
    for item in raw:
        m = _MEMBER.match(item) if isinstance(item, str) else None
        if m is None:
            c.fail("queues", f"member {item!r} in {where[1]} must be \"EXT\" or \"EXT:TIER\" "
                   "(a quoted extension, optional tier 1..999)", "members", where[2])
            continue
        ext, tier = m.group(1), int(m.group(2) or 1)
        if ext not in extensions:
            c.fail("queues", f"member {ext!r} in {where[1]} is not a [[users]] extension",
                   "members", where[2])
        elif tier < 1:
            c.fail("queues", f"member {item!r} in {where[1]}: tier must be 1 or more",
                   "members", where[2])
        elif any(x.extension == ext for x in members):
            c.fail("queues", f"member {ext!r} is listed twice in {where[1]}", "members",
                   where[2])
        else:
            members.append(Member(ext, tier))
    return tuple(members)


def _overflow(c: Checker, q: dict[str, Any], where: tuple[str, str, int]
              ) -> tuple[OverflowRule, ...]:
    """`overflow = [{after = 30, tier = 2}, {after = 90, tier = 3}]`: levels only go up."""
    raw = c.get(q, "overflow", list, [], where)
    rules: list[OverflowRule] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"after", "tier"}:
            c.fail("queues", f"overflow rule {item!r} in {where[1]} must be "
                   "{after = SECONDS, tier = N}", "overflow", where[2])
            continue
        after, tier = item["after"], item["tier"]
        if isinstance(after, bool) or not isinstance(after, int | float) or \
                not 0 <= after <= 86400:
            c.fail("queues", f"overflow after {after!r} in {where[1]} must be 0..86400 seconds",
                   "overflow", where[2])
        elif isinstance(tier, bool) or not isinstance(tier, int) or tier < 1:
            c.fail("queues", f"overflow tier {tier!r} in {where[1]} must be an integer of 1 "
                   "or more", "overflow", where[2])
        elif rules and (after <= rules[-1].after or tier <= rules[-1].tier):
            c.fail("queues", f"overflow rules in {where[1]} must go up: after and tier both "
                   f"larger than the rule before ({after}, {tier})", "overflow", where[2])
        else:
            rules.append(OverflowRule(float(after), tier))
    return tuple(rules)


def _alert(c: Checker, q: dict[str, Any], where: tuple[str, str, int]) -> AlertThresholds:
    waiting = _count(c, q, "alert_waiting", None, where, 1)
    longest = _seconds(c, q, "alert_longest_wait", None, where, positive=True)
    clear = c.get(q, "alert_clear", (int, float), 0.8, where)
    if not 0 < clear <= 1:
        c.fail("queues", f"alert_clear {clear} in {where[1]} must be more than 0 and at most 1",
               "alert_clear", where[2])
        clear = 0.8
    return AlertThresholds(waiting=waiting, longest_wait=longest, clear_ratio=float(clear))


def _alert_program(c: Checker, q: dict[str, Any], where: tuple[str, str, int],
                   alert: AlertThresholds) -> str | None:
    path = c.program("queues", q, "alert", where, "queue_alert events")
    if path is not None and alert.waiting is None and alert.longest_wait is None:
        c.warnings.append((c.path, c.loc.line("queues", where[2], "alert"),
                           f"alert program in {where[1]} never runs: set "
                           "alert_waiting or alert_longest_wait"))
    return path


def _check_sound(c: Checker, name: str, key: str, where: tuple[str, str, int],
                 paths: Paths) -> None:
    """A prompt name as `play` takes it; it must exist in some language (or sounds/ itself),
    since the caller's language is known only when the call arrives."""
    if not name or name.startswith("/") or ".." in Path(name).parts:
        c.fail("queues", f"{key} {name!r} in {where[1]} must name a sound under sounds/", key,
               where[2])
        return
    file = name if name.endswith(".wav") else name + ".wav"
    places = [paths.sounds / file]
    if paths.sounds.is_dir():
        places += [d / file for d in paths.sounds.iterdir() if d.is_dir()]
    if not any(p.is_file() for p in places):
        c.fail("queues", f"{key} {name!r} in {where[1]}: no {file} under {paths.sounds}", key,
               where[2])


def check_agents(c: Checker, doc: dict[str, Any]) -> AgentsConfig:
    agents = c.table(doc, "agents")
    where = ("agents", "[agents]", 0)
    defaults = AgentsConfig()
    codes: dict[str, str] = {}
    for op, default in zip(AGENT_OPS, defaults.codes(), strict=True):
        key = f"{op}_code"
        code = c.get(agents, key, str, default, where)
        if code and not _CODE.match(code):
            c.fail("agents", f"{key} {code!r} in [agents] must be 1..16 keys 0-9 * # "
                   "(or \"\" to switch it off)", key)
            code = ""
        for other_key, other in codes.items():
            if code and (code.startswith(other) or other.startswith(code)):
                c.fail("agents", f"{key} {code!r} and {other_key} {other!r} in [agents]: one "
                       "code must not begin with another", key)
        if code:
            codes[key] = code
    reasons = c.get(agents, "pause_reasons", dict, {}, where)
    for digits, reason in reasons.items():
        if not digits.isdigit() or not digits.isascii() or len(digits) > 8 or \
                not isinstance(reason, str) or not _REASON.match(reason):
            c.fail("agents", f"pause_reasons {digits} = {reason!r} in [agents]: keys are digits, "
                   "values reason names (letters, digits, _ or -)", "pause_reasons")
    got = {op: codes.get(f"{op}_code", "") for op in AGENT_OPS}
    return AgentsConfig(got["login"], got["logout"], got["pause"], got["unpause"],
                        types.MappingProxyType({str(k): str(v) for k, v in reasons.items()}))


def queue_changes(old: tuple[QueueSpec, ...], new: tuple[QueueSpec, ...]) -> list[str]:
    """What a reload does to the queues, one readable line each (for the reload log): queues
    added and removed, and per changed queue the keys that changed (members by extension)."""
    before, after = {q.name: q for q in old}, {q.name: q for q in new}
    lines = [f"queue {n}: added" for n in after if n not in before]
    lines += [f"queue {n}: removed (callers waiting in it keep waiting until they leave)"
              for n in before if n not in after]
    for n in (n for n in after if n in before and after[n] != before[n]):
        a, b = before[n], after[n]
        parts = []
        if a.members != b.members:
            was = {m.extension: m.tier for m in a.members}
            now = {m.extension: m.tier for m in b.members}
            parts += [f"+{e}" for e in now if e not in was]
            parts += [f"-{e}" for e in was if e not in now]
            parts += [f"{e} tier {was[e]}->{now[e]}" for e in now if e in was and was[e] != now[e]]
        for key in sorted(QueueSpec.__dataclass_fields__):
            if key not in ("name", "members") and getattr(a, key) != getattr(b, key):
                parts.append(key)
        lines.append(f"queue {n}: changed " + ", ".join(parts or ["member order"]))
    return lines
