"""The script transport a replay uses: the switch's own classes, never a look-alike.

`process` is pbxcore.script.transports.ProcessTransport (the CGI model); `worker` is
pbxcore.script.worker.WorkerPool with one process (the fixture's `worker`, default its
`script`); `webhook` is pbxcore.script.webhook.Webhook (unsigned: a fixture holds no secret).
They are imported lazily: a pbxcore without them gives a clear error, never a silent fallback
to processes.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from pbxcore.script.transports import ProcessTransport, ScriptTransport

TRANSPORT_NAMES = ("process", "worker", "webhook")


class TransportUnavailable(Exception):
    """The fixture (or --transport) names a transport this pbxcore cannot provide."""


def _load(module: str, cls_name: str, kind: str) -> type:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise TransportUnavailable(
            f"the {kind} transport is not available in this pbxcore ({module} is missing); "
            "use --transport process") from None
    cls = getattr(mod, cls_name, None)
    if not isinstance(cls, type):
        raise TransportUnavailable(f"the {kind} transport is not available ({module} has no "
                                   f"{cls_name})")
    return cls


def open_transport(kind: str, *, script: Path, worker: Path | None = None,
                   url: str | None = None, env: Mapping[str, str] | None = None
                   ) -> ScriptTransport:
    """A ready transport of `kind`; close() it when done."""
    if kind == "process":
        return ProcessTransport()
    if kind == "worker":
        cls = _load("pbxcore.script.worker", "WorkerPool", kind)
        transport: ScriptTransport = cls(worker or script, 1, env=dict(env or {}))
        return transport
    if kind == "webhook":
        if not url:
            raise TransportUnavailable("the webhook transport needs a URL (fixture \"url\")")
        cls = _load("pbxcore.script.webhook", "Webhook", kind)
        transport = cls(url)
        return transport
    raise TransportUnavailable(f"unknown transport {kind!r} (one of "
                               f"{', '.join(TRANSPORT_NAMES)})")
