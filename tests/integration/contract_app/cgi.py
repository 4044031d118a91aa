#!/usr/bin/env python3
"""Per-event process entry point: the event on stdin, actions on stdout, then exit."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ivr import Crash, Slow, handle  # noqa: E402

event = json.loads(sys.stdin.readline())
event["env"] = {k: v for k, v in os.environ.items() if k.startswith("PBX_")}
try:
    actions = handle(event)
except Crash as exc:
    print(f"Traceback: {exc}", file=sys.stderr)
    sys.exit(3)
except Slow:
    time.sleep(30)
    sys.exit(0)
print(json.dumps(actions))
