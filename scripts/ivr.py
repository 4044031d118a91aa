#!/usr/bin/python3
"""The demo IVR: a three-option menu, written to be copied and changed.

How a pbxcore script works (protocol v1): the switch runs this file once per call event, with
the event in environment variables (PBX_EVENT, PBX_CALLER, PBX_DIGITS, PBX_RESULT, ...) and the
same event as JSON on stdin. Whatever we print is the list of actions to run. An action with an
outcome (gather, record, goto) ends the list; its outcome comes back as the next event. Call
variables set with `set NAME=VALUE` come back as PBX_VAR_NAME on every later event.

The menu:  1 = hear your number,  2 = record a message and hear it back,  3 = opening hours.
A wrong key or no key counts as a try; after 3 tries in a row the caller hears goodbye.

Standard library only; scripts/ivr.sh is the same menu in shell and prints the same actions.
"""

import os
import re

MAX_TRIES = 3
# One key, five seconds to press it. (`prompt=` plays while waiting; a key press stops it.)
MENU = "gather max=1 timeout=5 prompt=menu"
WELCOME = "gather max=1 timeout=5 prompt=welcome"
# '#' is quoted because an unquoted '#' starts a comment in the action grammar.
RECORD = 'record max=30 beep=yes finish="#" silence=3'


def only(allowed: str, text: str) -> str:
    """Keep the characters of text that match the regex character class `allowed`."""
    return "".join(re.findall(f"[{allowed}]", text))


def tries_so_far() -> int:
    """The TRIES call variable; anything odd (missing, '007', 'x') counts as the first try."""
    value = os.environ.get("PBX_VAR_TRIES", "")
    return int(value) if re.fullmatch(r"[1-9][0-9]{0,2}", value) else 1


def on_incoming() -> list[str]:
    return ["answer", "set TRIES=1", WELCOME]


def on_gather() -> list[str]:
    choice = os.environ.get("PBX_DIGITS", "")
    if os.environ.get("PBX_RESULT") != "ok":
        choice = ""  # timeout: nothing was pressed
    if choice == "1":
        actions = ["play your-number-is"]
        number = only("0-9", os.environ.get("PBX_CALLER", ""))  # say digits wants digits only
        if number:
            actions.append(f"say digits {number}")
        return actions + ["set TRIES=1", MENU]
    if choice == "2":
        return ["play record-after-beep", "set TRIES=1", RECORD]
    if choice == "3":
        return ["play hours", "set TRIES=1", MENU]
    tries = tries_so_far()
    if tries >= MAX_TRIES:
        return ["play invalid", "play goodbye", "hangup"]
    return ["play invalid", f"set TRIES={tries + 1}", MENU]


def on_record() -> list[str]:
    actions = []
    recording = os.environ.get("PBX_RECORDING", "")
    # A path relative to the recordings directory, e.g. 2026/11/22/abc.wav. Anything with other
    # characters is not played (it would need quoting and is not what the switch produces).
    if re.fullmatch(r"[A-Za-z0-9._/-]+", recording):
        actions += ["play you-said", f"play recording:{recording}"]
    return actions + [MENU]


def on_hangup() -> list[str]:
    # The call is over: actions would be ignored. This is where a CRM update would go.
    caller = only("A-Za-z0-9+._@-", os.environ.get("PBX_CALLER", "")) or "unknown"
    return [f"log call ended: caller {caller}, tries {tries_so_far()}"]


def main() -> None:
    event = os.environ.get("PBX_EVENT", "")
    handlers = {
        "incoming": on_incoming,
        "redirect": on_incoming,  # another script sent the call here with `goto`
        "gather": on_gather,
        "record": on_record,
        "hangup": on_hangup,
    }
    handler = handlers.get(event)
    if handler is None:
        actions = [f"log ivr: unexpected event {only('a-z_', event) or 'none'}", "hangup"]
    else:
        actions = handler()
    print("\n".join(actions))


if __name__ == "__main__":
    main()
