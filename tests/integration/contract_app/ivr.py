"""The one piece of IVR logic every transport runs: `handle(event) -> actions` (JSON objects).

The three entry points beside it (cgi.py, worker.py, and webhook handling in http_server.py)
only move events in and actions out, so any difference in what the switch gets back is the
transport's.  Special callers make the program misbehave on purpose: `slow` (sleeps past any
deadline), `crash` (dies / HTTP 500), `bad` (prints an unknown action), `huge` (prints more than 64 KiB), `lag` (answers after 0.3 s).
"""

from __future__ import annotations

import time
from typing import Any


class Crash(Exception):
    """The caller asked for a crash: the entry point dies (or answers 500)."""


class Slow(Exception):
    """The caller asked for a hang: the entry point sleeps past the deadline."""


def handle(event: dict[str, Any]) -> list[dict[str, Any]]:
    caller = event.get("caller", "")
    env = event.get("env", {})
    if caller == "crash":
        raise Crash(f"crash requested by {caller} on {event['event']}")
    if caller == "slow":
        raise Slow()
    if caller == "lag":  # a slow CRM: answers, but late
        time.sleep(0.3)
    if caller == "huge":  # more than the 64 KiB any transport accepts
        return [{"action": "log", "text": "x" * 70000}]
    if caller == "bad":
        return [{"action": "plya", "files": ["welcome"]}]
    name = event.get("event")
    if name == "incoming":
        tier = event.get("vars", {}).get("tier", "none")
        return [
            {"action": "answer"},
            {"action": "set", "vars": {"env_caller": env.get("PBX_CALLER", "?"),
                                       "env_event": env.get("PBX_EVENT", "?"),
                                       "tier_seen": tier}},
            {"action": "gather", "max": 1, "timeout": 3, "prompt": "menu"},
        ]
    if name == "gather":
        if event.get("digits") == "1":
            return [{"action": "say", "kind": "digits", "value": "1"},
                    {"action": "log", "text": f"history {len(event.get('history', []))}"},
                    {"action": "hangup"}]
        return [{"action": "play", "files": ["invalid"]}, {"action": "hangup"}]
    if name == "hangup":
        return [{"action": "log", "text": f"over {event.get('result', '')}"}]
    return []
