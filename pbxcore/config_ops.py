"""`[monitor]`, `[metrics]` and `[log]` in pbx.toml: what operations tooling reads.

Called from ``pbxcore.config._check`` with its ``Checker`` (FILE:LINE problems like the rest).
All three tables are optional and change nothing about call handling:

- ``[monitor] capacity``: how many simultaneous calls the site is sized for (trunk channels or
  licences); `pbx top` shows lines in use against it.  0 (the default) means "not set".
- ``[metrics] listen``: "HOST:PORT" of the Prometheus endpoint; empty (the default) is off.
- ``[log] format``: "text" (the default) or "json", one JSON object per line
  (`pbx run --log-format` overrides it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbxcore.config_checker import Checker

MONITOR_KEYS = ("capacity",)
METRICS_KEYS = ("listen",)
LOG_KEYS = ("format",)
LOG_FORMATS = ("text", "json")
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


@dataclass(frozen=True)
class OpsConfig:
    capacity: int = 0  # [monitor] capacity: lines the site is sized for; 0 = not set
    metrics_host: str | None = None  # [metrics] listen, split; None = no endpoint
    metrics_port: int = 0
    log_format: str = "text"  # [log] format


def check_ops(c: Checker, doc: dict[str, Any]) -> OpsConfig:
    monitor = c.table(doc, "monitor")
    capacity = c.get(monitor, "capacity", int, 0, ("monitor", "[monitor]", 0))
    if not 0 <= capacity <= 1_000_000:
        c.fail("monitor", f"capacity {capacity} in [monitor] must be 0 (not set) .. 1000000",
               "capacity")
        capacity = 0
    metrics = c.table(doc, "metrics")
    listen = c.get(metrics, "listen", str, "", ("metrics", "[metrics]", 0))
    host: str | None = None
    port = 0
    if listen:
        m = _HOSTPORT.match(listen)
        if not m or not 1 <= int(m.group(2)) <= 65535:
            c.fail("metrics", f"listen {listen!r} in [metrics] must be HOST:PORT with PORT "
                   "1-65535 (or \"\" for no endpoint)", "listen")
        else:
            host, port = m.group(1).strip("[]"), int(m.group(2))
    log = c.table(doc, "log")
    fmt = c.get(log, "format", str, "text", ("log", "[log]", 0))
    if fmt not in LOG_FORMATS:
        c.fail("log", f"format {fmt!r} in [log] must be one of {', '.join(LOG_FORMATS)}",
               "format")
        fmt = "text"
    return OpsConfig(capacity, host, port, fmt)
