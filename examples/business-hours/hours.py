#!/usr/bin/python3
"""Business hours with a holiday calendar: open → menu, closed → message and voicemail offer.

The switch runs this file once per call event (protocol v1, docs/protocol.md) and reads the
actions we print. Open or closed is decided once, on `incoming`, and kept in the call variable
MODE: a caller who is in the menu at 17:59:58 is not thrown out at 18:00.

    open:    menu (1 sales, 2 support, 3 opening hours); 1/2 set DEPARTMENT and (until the
             queue action lands) say "please hold" and hang up
    closed:  "we are closed" (or "closed for a holiday"), "to leave a message press 1";
             1 → record → "thank you"; anything else → goodbye

"Now" is the local time (set TZ in the route's env), or PBXDEMO_NOW=2026-12-25T10:00 when the
route (or a test fixture) passes it. Holidays come from holidays.txt next to this file, or the
file named by HOLIDAYS_FILE. Standard library only.
"""

import datetime
import os
import re
from pathlib import Path

# Opening hours per weekday (Monday = 0): a list of (open, close) times, "HH:MM", close exclusive.
# A day that is missing or empty is closed. Two ranges give a lunch break.
HOURS: dict[int, list[tuple[str, str]]] = {
    0: [("09:00", "18:00")],
    1: [("09:00", "18:00")],
    2: [("09:00", "18:00")],
    3: [("09:00", "18:00")],
    4: [("09:00", "18:00")],
}
HERE = Path(__file__).resolve().parent
MENU = "gather max=1 timeout=5 prompt=business-hours/menu"
OFFER = "gather max=1 timeout=5 prompt=business-hours/leave-message"
RECORD = 'record max=120 beep=yes finish="#" silence=5'
DEPARTMENTS = {"1": "sales", "2": "support"}


def env(name: str) -> str:
    return os.environ.get(name, "")


def now() -> tuple[datetime.datetime, list[str]]:
    """The time to decide on, and log lines about it (a bad PBXDEMO_NOW is reported, not fatal)."""
    override = env("PBXDEMO_NOW")
    if override:
        try:
            return datetime.datetime.fromisoformat(override), []
        except ValueError:
            return datetime.datetime.now(), ["log business-hours: ignoring bad PBXDEMO_NOW"]
    return datetime.datetime.now(), []


def holiday(day: datetime.date) -> str:
    """The holiday's name if `day` is in the holidays file, else ''."""
    path = Path(env("HOLIDAYS_FILE") or HERE / "holidays.txt")
    if not path.is_absolute():
        path = HERE / path
    for line in path.read_text(encoding="utf-8").splitlines():
        date, _, name = line.strip().partition(" ")
        if date and not date.startswith("#"):
            if date in (day.isoformat(), day.strftime("%m-%d")):
                return name.strip() or "holiday"
    return ""


def is_open(when: datetime.datetime) -> bool:
    hhmm = when.strftime("%H:%M")
    return any(start <= hhmm < end for start, end in HOURS.get(when.weekday(), []))


def clean(text: str) -> str:
    """Words safe to print inside an action line: letters, digits and a few marks."""
    return re.sub(r"[^A-Za-z0-9 '.:-]", "", text)[:60]


def on_incoming() -> list[str]:
    when, actions = now()
    name = holiday(when.date())
    stamp = when.strftime("%a %Y-%m-%d %H:%M")
    if name:
        return actions + ["answer", "set MODE=closed", f'log "closed: {clean(name)}, {stamp}"',
                          "play business-hours/holiday", OFFER]
    if not is_open(when):
        return actions + ["answer", "set MODE=closed", f'log "closed: {stamp}"', "play closed",
                          "play hours", OFFER]
    return actions + ["answer", "set MODE=open TRIES=1", f'log "open: {stamp}"', MENU]


def on_gather() -> list[str]:
    key = env("PBX_DIGITS") if env("PBX_RESULT") == "ok" else ""
    if env("PBX_VAR_MODE") == "closed":
        if key == "1":
            return ["play record-after-beep", RECORD]
        return ["play goodbye", "hangup"]
    if key in DEPARTMENTS:
        # When queues land, `queue sales` replaces the goodbye: DEPARTMENT tells the agent why.
        return [f"set DEPARTMENT={DEPARTMENTS[key]}", "play business-hours/please-hold",
                f"log caller chose {DEPARTMENTS[key]}", "hangup"]
    if key == "3":
        return ["play hours", MENU]
    if env("PBX_VAR_TRIES") == "1":
        return ["play invalid", "set TRIES=2", MENU]
    return ["play invalid", "play goodbye", "hangup"]


def on_record() -> list[str]:
    recording = env("PBX_RECORDING")
    actions = [f"set VOICEMAIL={recording}"] if re.fullmatch(r"[A-Za-z0-9._/-]+", recording) else []
    # After `result=hangup` only set/log run; the thank-you is for callers who pressed # or paused.
    return actions + ["log voicemail left", "play business-hours/thank-you", "hangup"]


def on_hangup() -> list[str]:
    mode = env("PBX_VAR_MODE") or "unknown"
    department = env("PBX_VAR_DEPARTMENT") or "none"
    return [f"log call ended: mode {clean(mode)}, department {clean(department)}"]


def main() -> None:
    handlers = {"incoming": on_incoming, "redirect": on_incoming, "gather": on_gather,
                "record": on_record, "hangup": on_hangup}
    handler = handlers.get(env("PBX_EVENT"))
    actions = handler() if handler else ["log business-hours: unexpected event", "hangup"]
    print("\n".join(actions))


if __name__ == "__main__":
    main()
