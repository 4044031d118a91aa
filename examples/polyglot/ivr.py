#!/usr/bin/python3
"""The polyglot IVR in Python (same menu, same actions as ivr.sh, ivr.pl, ivr.js; see README.md).

Menu: 1 = your number read back, 2 = goodbye; anything else: "invalid" and one more try.
"""

import os
import re

MENU = "gather max=1 timeout=5 prompt=polyglot/menu"


def actions(env: dict[str, str]) -> list[str]:
    event = env.get("PBX_EVENT", "")
    if event in ("incoming", "redirect"):
        return ["answer", MENU]
    if event == "gather":
        key = env.get("PBX_DIGITS", "") if env.get("PBX_RESULT") == "ok" else ""
        if key == "1":
            number = re.sub(r"[^0-9]", "", env.get("PBX_CALLER", ""))  # say digits wants digits
            said = [f"say digits {number[:32]}"] if number else []
            return ["play your-number-is", *said, "play goodbye", "hangup"]
        if key == "2":
            return ["play goodbye", "hangup"]
        if env.get("PBX_VAR_RETRIED") == "yes":
            return ["play invalid", "play goodbye", "hangup"]
        return ["play invalid", "set RETRIED=yes", MENU]
    if event == "hangup":
        caller = re.sub(r"[^A-Za-z0-9+._@-]", "", env.get("PBX_CALLER", "")) or "unknown"
        result = re.sub(r"[^a-z]", "", env.get("PBX_RESULT", "")) or "none"
        return [f"log call ended: caller {caller}, result {result}"]
    return ["log polyglot: unexpected event", "hangup"]


if __name__ == "__main__":
    print("\n".join(actions(dict(os.environ))))
