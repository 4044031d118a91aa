"""The switch's own control commands: calls, hangup, registrations, reload, status, top.

Each handler reads live state (the switch's calls, the registrar, the trunks) at the moment it
is asked; nothing here keeps a second copy of it.  Result shapes are the public interface
documented in docs/operations.md; the CLI renders them and `--json` prints them as they are.
Caller-controlled text (display names, numbers, User-Agent) is passed through as data: the
wire codec escapes it to ASCII JSON and every renderer escapes it again for the terminal.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pbxcore import __version__
from pbxcore.call import originate as origin
from pbxcore.call.call import Call
from pbxcore.call.conference_commands import install as install_conferences
from pbxcore.call.switch import Switch
from pbxcore.config_watch import ReloadReport
from pbxcore.control.protocol import BAD_ARGS, CONFIG_INVALID, NOT_FOUND, CommandError
from pbxcore.control.server import ControlServer
from pbxcore.store import redact_dsn

Reloader = Callable[[], Awaitable[ReloadReport]]


@dataclass
class SwitchCommands:
    """The handlers, bound to one running switch."""

    switch: Switch
    control: ControlServer
    reload_config: Reloader
    started: datetime
    started_monotonic: float

    def install(self) -> None:
        for name, handler in (("calls", self.calls), ("hangup", self.hangup),
                              ("registrations", self.registrations),
                              ("reload", self.reload), ("status", self.status),
                              ("top", self.top), ("originate", self.originate),
                              ("voicemail_changed", self.voicemail_changed)):
            self.control.register(name, handler)
        install_conferences(self.control, self.switch.deps.conferences, self.switch.calls)
        # The ACD service registers these when the config has queues.
        for name in ("queues", "agents", "agent"):
            self.control.reserve(name, "no queues configured")

    async def voicemail_changed(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """`pbx voicemail` changed a box in the store: its owners' lamps follow now."""
        box = args.get("box")
        if not isinstance(box, str) or not box:
            raise CommandError(BAD_ARGS, 'voicemail_changed needs "box"')
        self.switch.deps.voicemail.changed(box)
        return {"box": box}

    async def calls(self, args: Mapping[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        calls = sorted(self.switch.calls.values(), key=lambda c: c.info.started)
        return {"calls": [call_snapshot(c, now) for c in calls]}

    async def hangup(self, args: Mapping[str, Any]) -> dict[str, Any]:
        call_id = args.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise CommandError(BAD_ARGS, 'hangup needs "call_id"')
        call = self.switch.calls.get(call_id)
        if call is None or call.ended.is_set():
            raise CommandError(NOT_FOUND, f"no live call {call_id} (see pbx calls)")
        answered = call.answered
        call.end_by_switch("hung up by pbx hangup")
        # Wait (briefly) for the engine to run the hangup event and close the CDR, so the
        # operator's next `pbx cdr` already shows it.
        done = asyncio.ensure_future(_gone(self.switch, call_id))
        await asyncio.wait({done}, timeout=5)
        done.cancel()
        return {"call_id": call_id, "sent": "BYE" if answered else "487",
                "closed": call_id not in self.switch.calls}

    async def originate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Place a call (click-to-call, or a script on the answered call); its id at once."""
        try:
            request = origin.check_request(self.switch.deps.config, args)
        except origin.OriginateError as exc:
            raise CommandError(BAD_ARGS, str(exc)) from None
        return {"call_id": origin.start(self.switch, request)}

    async def registrations(self, args: Mapping[str, Any]) -> dict[str, Any]:
        registrar = self.switch.registrar
        if self.switch.deps.config.cluster is not None:
            await registrar.refresh_all()  # phones registered via the other nodes too
        now = registrar.clock()
        names = {u.extension: u.name for u in self.switch.deps.config.users}
        rows = []
        for extension, bindings in sorted(registrar.all().items()):
            for b in sorted(bindings, key=lambda b: b.contact):
                rows.append({
                    "extension": extension, "name": names.get(extension),
                    "contact": b.contact, "transport": b.source.transport,
                    "source": f"{b.source.host}:{b.source.port}",
                    "expires": max(0, int(b.expires_at - now)), "user_agent": b.user_agent,
                    "path": list(b.path),
                })
        return {"registrations": rows}

    async def reload(self, args: Mapping[str, Any]) -> dict[str, Any]:
        report = await self.reload_config()
        if not report.applied:
            raise CommandError(CONFIG_INVALID, "config refused; the running config stays",
                               report.problems)
        return {"applied": True, "changes": report.changes, "restart_needed": report.restart,
                "config": str(self.switch.deps.config.path)}

    async def status(self, args: Mapping[str, Any]) -> dict[str, Any]:
        deps = self.switch.deps
        config = deps.config
        calls = list(self.switch.calls.values())
        queues: Any = None
        if self.control.handles("queues"):
            try:
                queues = (await self.control.call("queues")).get("queues")
            except CommandError:
                queues = None
        trunks = self.switch.trunks.status() if self.switch.trunks is not None else {}
        return {
            "version": __version__, "pid": os.getpid(),
            "started": self.started.isoformat(timespec="seconds"),
            "uptime_seconds": round(time.monotonic() - self.started_monotonic, 1),
            "config": str(config.path),
            "listen": [f"{s.transport}:{s.host}:{s.port}" for s in deps.endpoint.bound],
            "calls": {"total": len(calls), "answered": sum(c.answered for c in calls),
                      "bridged": sum(c.bridge is not None for c in calls)},
            "registrations": sum(len(b) for b in self.switch.registrar.all().values()),
            "queues": queues,
            "store": await _store_status(self.switch),
            "trunks": [{"name": n, "status": s} for n, s in trunks.items()],
            "control": str(self.control.path),
            "commands": self.control.commands,
        }


    async def top(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Everything `pbx top` shows, in one round trip a second: the live calls and their
        counts by route and by called number (DID), lines in use against [monitor] capacity,
        call starts per second, script errors in the last minute, queues, agents, trunks."""
        now = datetime.now(UTC)
        mono = time.monotonic()
        calls = sorted(self.switch.calls.values(), key=lambda c: c.info.started)
        stats = self.switch.deps.stats
        by_route: dict[str, int] = {}
        by_did: dict[str, int] = {}
        for c in calls:
            by_route[c.route.name] = by_route.get(c.route.name, 0) + 1
            by_did[c.info.called] = by_did.get(c.info.called, 0) + 1
        trunks = self.switch.trunks.status() if self.switch.trunks is not None else {}
        capacity = self.switch.deps.config.ops.capacity
        # A screen shows a few dozen rows: `max_calls` spares serialising thousands a second.
        limit = args.get("max_calls")
        shown = calls[:limit] if isinstance(limit, int) and limit >= 0 else calls
        return {
            "time": now.isoformat(timespec="seconds"), "version": __version__,
            "uptime_seconds": round(mono - self.started_monotonic, 1),
            "capacity": capacity or None, "lines_in_use": len(calls),
            "calls_per_second": round(stats.calls_per_second(mono), 2),
            "script_errors_last_minute": stats.errors_last_minute(mono),
            "by_route": _counted(by_route, "route"), "by_did": _counted(by_did, "did"),
            "calls": [call_snapshot(c, now) for c in shown],
            "queues": await self._optional("queues"), "agents": await self._optional("agents"),
            "registrations": sum(len(b) for b in self.switch.registrar.all().values()),
            "trunks": [{"name": n, "status": s} for n, s in trunks.items()],
        }

    async def _optional(self, name: str) -> Any:
        """The ACD's answer to `name` (its list), or None without queues."""
        if not self.control.handles(name):
            return None
        try:
            return (await self.control.call(name)).get(name)
        except CommandError:
            return None


def _counted(counts: dict[str, int], key: str) -> list[dict[str, Any]]:
    return [{key: k, "calls": n} for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def call_snapshot(call: Call, now: datetime) -> dict[str, Any]:
    """One live call as `pbx calls` shows it."""
    info = call.info
    state, detail = call.activity, call.activity_detail
    bridge = call.bridge
    if bridge is not None:
        # Bridge.hold stops relaying towards the held side: either side not relaying is hold.
        state = "bridged" if bridge.a.relaying and bridge.b.relaying else "on hold"
    elif not call.answered and state == "in script":
        state = "ringing"  # the caller hears ringback while the script decides
    agent = detail if bridge is not None else None
    return {
        "call_id": info.call_id, "caller": info.caller, "caller_name": info.caller_name,
        "called": info.called, "route": call.route.match.pattern,
        "state": state, "detail": detail, "answered": call.answered,
        "started": info.started.isoformat(timespec="seconds"),
        "duration": round((now - info.started).total_seconds(), 1),
        "script": call.script.name, "agent": agent, "language": call.language,
    }


async def _gone(switch: Switch, call_id: str) -> None:
    while call_id in switch.calls:
        await asyncio.sleep(0.02)


async def _store_status(switch: Switch) -> dict[str, Any]:
    dsn = redact_dsn(switch.deps.config.store_dsn)
    try:
        async with asyncio.timeout(2):
            await switch.deps.store.cdrs(limit=1)
    except Exception as exc:  # the switch runs on; status says the store is unwell
        return {"dsn": dsn, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"dsn": dsn, "ok": True}
