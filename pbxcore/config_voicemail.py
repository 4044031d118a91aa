"""`[[voicemail]]` and `[voicemail_access]` in pbx.toml: the voicemail boxes and the code owners
dial to listen.

Called from ``pbxcore.config._check`` with its ``Checker`` (FILE:LINE on every problem,
docs/configuration.md lists every key).  A box is a company box (``sales``) or a personal one
(an extension's number); its ``owners`` are the extensions whose phones show its message-waiting
lamp and who may listen to it from their phone (an owner of one box hears that box; of several,
the first in file order).  As with a queue's alert program, a missing or non-executable
``notify`` program is a *warning*: messages are still saved, only the notification cannot run.

The access code defaults to ``*97``, Asterisk's FreePBX "my voicemail" code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # config.py imports this module; only its types are needed here
    from pbxcore.config import Paths, User
    from pbxcore.config_checker import Checker

__all__ = ["VOICEMAIL_ACCESS_KEYS", "VOICEMAIL_KEYS", "VoicemailAccess", "VoicemailBox",
           "check_voicemail", "check_voicemail_access"]

VOICEMAIL_KEYS = frozenset({"box", "owners", "pin", "greeting", "max_messages", "max_seconds",
                            "min_seconds", "notify", "email", "mwi"})
VOICEMAIL_ACCESS_KEYS = frozenset({"code", "ask_pin"})

BOX_NAME = re.compile(r"^[A-Za-z0-9_.+\-]{1,64}$")
_PIN = re.compile(r"^[0-9]{1,16}$")
_CODE = re.compile(r"^[0-9*#]{1,16}$")
MIN_SECONDS = 1.0
"""Default `min_seconds`: a message shorter than this is `too_short` and not kept (Asterisk's
app_voicemail `minsecs`): a caller who hangs up at the beep leaves nothing to listen to."""

Mwi = Literal["subscribe", "unsolicited"]


@dataclass(frozen=True)
class VoicemailBox:
    """One `[[voicemail]]` box."""

    box: str
    owners: tuple[str, ...] = ()  # extensions: their lamps, their phone menu
    pin: str = ""  # "" = no PIN asked from an owner's own phone
    greeting: str = "record-after-beep"  # a prompt under sounds/ (the action's greeting= wins)
    max_messages: int = 100  # new + heard; one more is `full`
    max_seconds: float = 120.0  # default max= of the action
    min_seconds: float = MIN_SECONDS  # shorter: too_short, not kept
    notify: str | None = None  # program run with the voicemail_left event (absolute path)
    email: str = ""  # passed to notify as PBX_VOICEMAIL_EMAIL
    mwi: Mwi = "subscribe"  # unsolicited: NOTIFY the owners' registered phones unasked


@dataclass(frozen=True)
class VoicemailAccess:
    """`[voicemail_access]`: the feature code an owner dials to listen ("" = off)."""

    code: str = "*97"
    ask_pin: bool = True  # ask the box's PIN (when it has one) even from the owner's phone


def check_voicemail(c: Checker, doc: dict[str, Any], users: tuple[User, ...],
                    paths: Paths) -> tuple[VoicemailBox, ...]:
    raw = doc.get("voicemail", [])
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        c.fail("", "voicemail must be an array of tables ([[voicemail]])", "voicemail")
        return ()
    extensions = {u.extension for u in users}
    boxes: list[VoicemailBox] = []
    for i, b in enumerate(raw):
        box = _check_box(c, b, i, extensions, paths)
        if box is None:
            continue
        if any(other.box == box.box for other in boxes):
            c.fail("voicemail", f"duplicate box {box.box!r} in [[voicemail]] #{i + 1}", "box", i)
            continue
        boxes.append(box)
    return tuple(boxes)


def _check_box(c: Checker, b: dict[str, Any], i: int, extensions: set[str],
               paths: Paths) -> VoicemailBox | None:
    where = ("voicemail", f"[[voicemail]] #{i + 1}", i)
    c.unknown(b, "voicemail", where[1], i)
    before = len(c.problems)
    name = c.get(b, "box", str, "", where)
    if not BOX_NAME.match(name):
        c.fail("voicemail", f"{where[1]} needs box = \"NAME\" (a name or an extension)",
               "box" if "box" in b else None, i)
    owners = c.get(b, "owners", list, [], where)
    for owner in owners:
        if not isinstance(owner, str) or owner not in extensions:
            c.fail("voicemail", f"owner {owner!r} in {where[1]} is not a [[users]] extension",
                   "owners", i)
    if not owners and name in extensions:
        owners = [name]  # a personal box belongs to its extension unless told otherwise
    pin = c.get(b, "pin", str, "", where)
    if pin and not _PIN.match(pin):
        c.fail("voicemail", f"pin in {where[1]} must be 1..16 digits", "pin", i)
    greeting = c.get(b, "greeting", str, "record-after-beep", where)
    if not greeting or greeting.startswith("/") or ".." in greeting.split("/"):
        c.fail("voicemail", f"greeting {greeting!r} in {where[1]} must name a sound under "
               f"{paths.sounds.name}/", "greeting", i)
    max_messages = c.get(b, "max_messages", int, 100, where)
    if not 1 <= max_messages <= 100000:
        c.fail("voicemail", f"max_messages {max_messages} in {where[1]} must be 1..100000",
               "max_messages", i)
    max_seconds = _seconds(c, b, "max_seconds", 120.0, where, 1.0, 3600.0)
    min_seconds = _seconds(c, b, "min_seconds", MIN_SECONDS, where, 0.0, 60.0)
    email = c.get(b, "email", str, "", where)
    if any(ch in email for ch in "\r\n\x00") or len(email) > 254:
        c.fail("voicemail", f"email in {where[1]} must be one address", "email", i)
    mwi = c.get(b, "mwi", str, "subscribe", where)
    if mwi not in ("subscribe", "unsolicited"):
        c.fail("voicemail", f"mwi {mwi!r} in {where[1]} must be subscribe or unsolicited",
               "mwi", i)
    notify = _notify(c, b, where)
    if len(c.problems) > before:
        return None
    return VoicemailBox(box=name, owners=tuple(owners), pin=pin, greeting=greeting,
                        max_messages=max_messages, max_seconds=max_seconds,
                        min_seconds=min_seconds, notify=notify, email=email, mwi=mwi)


def _seconds(c: Checker, b: dict[str, Any], key: str, default: float,
             where: tuple[str, str, int], low: float, high: float) -> float:
    value = c.get(b, key, (int, float), default, where)
    if not low <= value <= high:
        c.fail("voicemail", f"{key} {value} in {where[1]} must be {low:g}..{high:g} seconds",
               key, where[2])
        return default
    return float(value)


def _notify(c: Checker, b: dict[str, Any], where: tuple[str, str, int]) -> str | None:
    return c.program("voicemail", b, "notify", where, "voicemail_left events")


def check_voicemail_access(c: Checker, doc: dict[str, Any]) -> VoicemailAccess:
    table = c.table(doc, "voicemail_access")
    where = ("voicemail_access", "[voicemail_access]", 0)
    code = c.get(table, "code", str, VoicemailAccess.code, where)
    if code and not _CODE.match(code):
        c.fail("voicemail_access", f"code {code!r} in [voicemail_access] must be 1..16 keys "
               "0-9 * # (or \"\" to switch it off)", "code")
        code = ""
    ask_pin = c.get(table, "ask_pin", bool, True, where)
    return VoicemailAccess(code=code, ask_pin=ask_pin)
