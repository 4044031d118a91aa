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
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.polling import PollingObserver

from pbxcore.config import Config, ConfigError, load_config

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
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            self.refusals += 1
            log.error("config change refused (%s); keeping the running config:\n%s",
                      changed or self.config.path, exc)
            return False
        if new.warnings:
            # A change that breaks a route's program is refused (the running config stays and
            # reports it); at start the same config runs, with that route on its fallback.
            self.refusals += 1
            log.error("config change refused (%s); keeping the running config:\n%s",
                      changed or self.config.path, ConfigError(list(new.warnings)))
            return False
        for what, old_value, new_value in (
            ("[sip] listen", self.config.sip.listen, new.sip.listen),
            ("[store] dsn", self.config.store_dsn, new.store_dsn),
            ("[node] id", self.config.node, new.node),
            ("[scripts] user", self.config.scripts.user, new.scripts.user),
            ("[media] rtp_ports", (self.config.media.rtp_low, self.config.media.rtp_high),
             (new.media.rtp_low, new.media.rtp_high)),
        ):
            if old_value != new_value:
                log.warning("%s changed: takes effect after a restart", what)
        await self.apply(new)
        self.config = new
        self.reloads += 1
        log.info("config reloaded after a change to %s: %d routes, %d users",
                 changed or self.config.path, len(new.routes), len(new.users))
        return True

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
