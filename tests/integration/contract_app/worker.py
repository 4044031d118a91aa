#!/usr/bin/env python3
"""Worker entry point: one event per stdin line, one actions line per event, forever."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ivr import Crash, Slow, handle  # noqa: E402

print(f"worker {os.getpid()} up ({os.environ.get('PBX_TRANSPORT')})", file=sys.stderr, flush=True)
for line in sys.stdin:
    event = json.loads(line)
    try:
        actions = handle(event)
    except Crash as exc:
        print(f"Traceback: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
    except Slow:
        time.sleep(30)
        continue
    print(json.dumps(actions), flush=True)
