"""Hot reload: watch pbx.toml and the scripts directory, apply valid changes to new calls.

watchdog reports file events on its own (polling) thread; they are handed to the event loop and debounced
(editors write a file in several steps), then the config is loaded again.  A valid config replaces
the running one for calls that arrive from then on — calls in progress keep the Route object they
started with.  An invalid one is refused with `FILE:LINE: reason` in the log and the old config
stays.  Listen addresses and the store cannot change under a running switch: a change to them is
logged as needing a restart and the rest of the new config still applies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.polling import PollingObserver

from pbxcore.config import Config, ConfigError, format_problem, load_config
from pbxcore.config_queues import queue_changes

log = logging.getLogger("pbxcore.reload")

DEBOUNCE = 0.3  # seconds of quiet before reloading
POLL = 1.0  # seconds between looks at the watched directories


class _Handler(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, poke: Callable[[str], None],
                 wanted: Callable[[str], bool]) -> None:
        self.loop = loop
        self.poke = poke
        self.wanted = wanted

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
        for path in paths:
            if path and self.wanted(path):
                self.loop.call_soon_threadsafe(self.poke, path)
                return


class ConfigWatcher:
    """Reloads `config.path` when it or a script changes; calls `apply(new)` on success."""

    def __init__(self, config: Config, apply: Callable[[Config], Awaitable[None]]) -> None:
        self.config = config
        self.apply = apply
        self.reloads = 0  # successful reloads, for tests and `pbx` status output
        self.refusals = 0
        self._observer: PollingObserver | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[bool] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        config_file = self.config.path.resolve()
        scripts = self.config.paths.scripts.resolve()

        def wanted(path: str) -> bool:
            # The config, or a program a route runs (a script made non-executable is a
            # problem to report); a script's own log file in scripts/ is not a reason to reload.
            p = Path(path)
            return p == config_file or p in self._programs()

        handler = _Handler(loop, self._poke, wanted)
        # Polling, not inotify: the directories watched may also hold the SQLite store (a
        # config next to its database is common), and inotify would wake a thread, and take
        # the GIL, on every commit of every call.  A stat of a few directories a second costs
        # nothing and a config edit is picked up within POLL seconds.
        observer = PollingObserver(timeout=POLL)
        folders = {config_file.parent} | {p.parent for p in self._programs()}
        if scripts.is_dir():
            folders.add(scripts)
        for folder in sorted(folders):
            observer.schedule(handler, str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        log.info("watching %s and %s for changes", config_file, scripts)

    def _programs(self) -> set[Path]:
        return {p.resolve() for r in self.config.routes for p in (r.script, r.worker)
                if p is not None and r.transport != "webhook"}

    def _poke(self, path: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(DEBOUNCE, self._fire, path)

    def _fire(self, path: str) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self.reload(path))

    async def reload(self, changed: str = "") -> bool:
        """Load the config again; True if it was applied."""
        return (await self.reload_report(changed)).applied

    async def reload_report(self, changed: str = "") -> ReloadReport:
        """Load the config again and say what happened (`pbx reload` prints this)."""
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            self.refusals += 1
            log.error("config change refused (%s); keeping the running config:\n%s",
                      changed or self.config.path, exc)
            return ReloadReport(False, problems=[format_problem(p) for p in exc.problems])
        known = {reason for _, _, reason in self.config.warnings}
        fresh = [w for w in new.warnings if w[2] not in known]
        if fresh:
            # A change that breaks a route's program (or names a missing alert program) is
            # refused: the running config stays and says why.  At start the same config runs,
            # with that route on its fallback; a warning the running config has already had
            # does not block later changes.
            self.refusals += 1
            log.error("config change refused (%s); keeping the running config:\n%s",
                      changed or self.config.path, ConfigError(list(fresh)))
            return ReloadReport(False, problems=[format_problem(p) for p in fresh])
        restart = [what for what, old_value, new_value in (
            ("[sip] listen", self.config.sip.listen, new.sip.listen),
            ("[store] dsn", self.config.store_dsn, new.store_dsn),
            ("[node] id", self.config.node, new.node),
            ("[cluster]", self.config.cluster, new.cluster),
            ("[scripts] user", self.config.scripts.user, new.scripts.user),
            ("[media] rtp_ports", (self.config.media.rtp_low, self.config.media.rtp_high),
             (new.media.rtp_low, new.media.rtp_high)),
            ("[paths] control", self.config.paths.control, new.paths.control),
            ("[metrics] listen", (self.config.ops.metrics_host, self.config.ops.metrics_port),
             (new.ops.metrics_host, new.ops.metrics_port)),
            ("[log] format", self.config.ops.log_format, new.ops.log_format),
            ("[web] listen", (self.config.web.host, self.config.web.port),
             (new.web.host, new.web.port)),
            ("[web] secret", self.config.web.secret, new.web.secret),
        ) if old_value != new_value]
        for what in restart:
            log.warning("%s changed: takes effect after a restart", what)
        for warning in new.warnings:
            log.warning("config: %s", format_problem(warning))
        # Queues change in place: callers waiting keep their place (the ACD service reads
        # the new QueueSpec); the log and `pbx reload` say exactly what changed.
        queue_lines = queue_changes(self.config.queues, new.queues)
        for line in queue_lines:
            log.info("%s", line)
        changes = [*describe_changes(self.config, new), *queue_lines]
        await self.apply(new)
        self.config = new
        self.reloads += 1
        log.info("config reloaded after a change to %s: %d routes, %d users, %d queues",
                 changed or self.config.path, len(new.routes), len(new.users), len(new.queues))
        return ReloadReport(True, changes=changes, restart=restart)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)


@dataclass
class ReloadReport:
    """The outcome of one reload: applied or refused (with the FILE:LINE problems)."""

    applied: bool
    changes: list[str] = field(default_factory=list)  # one line per change, for people
    problems: list[str] = field(default_factory=list)  # FILE:LINE: reason, when refused
    restart: list[str] = field(default_factory=list)  # changed settings needing a restart


# Secrets are never shown, only that they changed.
_SECRET = frozenset({"password", "secret"})
_SKIP = frozenset({"index", "path"})


def describe_changes(old: Config, new: Config) -> list[str]:
    """What differs between two configs, one line per thing: "route ^100$: timeout 5 -> 10",
    "user 1004 added", "trunk provider removed".  Generic over Config's fields, so a section
    added later (queues) is described without code here."""
    lines: list[str] = []
    for f in dataclasses.fields(old):
        if f.name in _SKIP:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        if isinstance(a, tuple) and isinstance(b, tuple) and all(
                dataclasses.is_dataclass(x) for x in (*a, *b)):
            lines += _list_changes(f.name.removesuffix("s"), a, b)
        elif dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
            lines += [f"[{f.name}] {d}" for d in _field_changes(a, b)]
        else:
            lines.append(f"{f.name}: {_show(f.name, a)} -> {_show(f.name, b)}")
    return lines


def _key(item: Any) -> str:
    for attr in ("extension", "name"):  # a user's name is a display name, not its key
        value = getattr(item, attr, None)
        if isinstance(value, str):
            return value
    match = getattr(item, "match", None)
    return str(getattr(match, "pattern", match))


def _list_changes(kind: str, old: tuple[Any, ...], new: tuple[Any, ...]) -> list[str]:
    before = {_key(x): x for x in old}
    after = {_key(x): x for x in new}
    lines = [f"{kind} {k} added" for k in after if k not in before]
    lines += [f"{kind} {k} removed" for k in before if k not in after]
    for k in after:
        if k in before and before[k] != after[k]:
            diffs = _field_changes(before[k], after[k])
            if diffs:
                lines.append(f"{kind} {k}: {'; '.join(diffs)}")
    if not lines and [_key(x) for x in old] != [_key(x) for x in new]:
        lines.append(f"{kind}s reordered")  # routes: the first match wins, so order matters
    return lines


def _field_changes(a: Any, b: Any) -> list[str]:
    out = []
    for f in dataclasses.fields(a):
        if f.name in _SKIP:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y:
            out.append(f"{f.name} changed" if f.name in _SECRET
                       else f"{f.name} {_show(f.name, x)} -> {_show(f.name, y)}")
    return out


def _show(name: str, value: Any) -> str:
    if name in _SECRET:
        return "***"
    pattern = getattr(value, "pattern", None)
    if isinstance(pattern, str):
        value = pattern
    elif isinstance(value, tuple):
        value = [getattr(v, "pattern", v) for v in value]
    text = str(value) if isinstance(value, str | Path) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
