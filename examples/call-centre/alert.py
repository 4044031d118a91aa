#!/usr/bin/python3
"""The operators' supervisor alert: one line per `queue_alert` event in a log file.

The switch runs this program (the script contract: PBX_EVENT=queue_alert) once when a queue's
figure crosses its threshold (`alert_waiting`, `alert_longest_wait`) and once when it is clear
again (below threshold x `alert_clear`).  A real call centre would mail, page or post to a
messenger here; the example appends to ALERT_LOG (default: var/call-centre-alerts.log at the
repository root, next to the demo's database).  Standard library only; prints no actions.
"""

import os
import re
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_LOG = Path(__file__).resolve().parents[2] / "var" / "call-centre-alerts.log"


def field(name: str) -> str:
    # The queue name and figures come from pbx.toml and the switch; keep the line one line.
    return re.sub(r"[^A-Za-z0-9_.:-]", "?", os.environ.get(name, ""))[:64]


def main() -> None:
    path = Path(os.environ.get("ALERT_LOG") or DEFAULT_LOG)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (f"{datetime.now(UTC).isoformat(timespec='seconds')} queue {field('PBX_QUEUE')} "
            f"{field('PBX_ALERT_FIGURE')} {field('PBX_ALERT_STATE')}: "
            f"{field('PBX_ALERT_VALUE')} (threshold {field('PBX_ALERT_THRESHOLD')})\n")
    with path.open("a", encoding="utf-8") as log:
        log.write(line)


if __name__ == "__main__":
    if os.environ.get("PBX_EVENT") == "queue_alert":
        main()
