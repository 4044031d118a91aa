"""The script transport a replay uses: the switch's own classes, never a look-alike.

`process` is pbxcore.script.transports.ProcessTransport (the CGI model). `worker` and `webhook`
come from pbxcore.script.worker / pbxcore.script.webhook when this pbxcore has them; when it
does not, asking for them is a clear error instead of a silent fallback to processes.
"""

from __future__ import annotations

import importlib
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
                   url: str | None = None) -> ScriptTransport:
    """A ready transport of `kind`; close() it when done."""
    if kind == "process":
        return ProcessTransport()
    if kind == "worker":
        cls = _load("pbxcore.script.worker", "WorkerTransport", kind)
        transport: ScriptTransport = cls(worker or script)
        return transport
    if kind == "webhook":
        if not url:
            raise TransportUnavailable("the webhook transport needs a URL (fixture \"url\")")
        cls = _load("pbxcore.script.webhook", "WebhookTransport", kind)
        transport = cls(url)
        return transport
    raise TransportUnavailable(f"unknown transport {kind!r} (one of "
                               f"{', '.join(TRANSPORT_NAMES)})")
