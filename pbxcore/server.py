"""The composition root: build the switch from a Config and run it until a signal.

Everything that has a lifetime is created here and closed here, in reverse order: the store,
the RTP pacer, the SIP endpoint and the switch (transaction user).  SIGINT/SIGTERM hang up every
live call with BYE (or 503 before answer) and close their CDRs before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pbxcore.acd.commands import install as install_acd_commands
from pbxcore.acd.service import AcdService
from pbxcore.call.call import CallDeps
from pbxcore.call.switch import Switch
from pbxcore.call.trunks import start_trunks
from pbxcore.config import Config, Limits
from pbxcore.config_watch import ConfigWatcher, ReloadReport
from pbxcore.control.handlers import SwitchCommands
from pbxcore.control.server import ControlError, ControlServer
from pbxcore.logs import setup_logging
from pbxcore.media.pacer import Pacer
from pbxcore.media.ports import PortAllocator
from pbxcore.media.sounds import SoundLibrary
from pbxcore.metrics import MetricsServer
from pbxcore.script import contain
from pbxcore.script.transports import build_transports
from pbxcore.sip.transaction import TransactionLayer
from pbxcore.store import Store, open_store
from pbxcore.transport.sip_endpoint import ListenError, ListenSpec, SipEndpoint, SipHandler
from pbxcore.transport.source_guard import raise_nofile_limit
from pbxcore.web.app import WebServer, context_for
from pbxcore.web.auth import load_secret

log = logging.getLogger("pbxcore")

Recovery = Callable[[Store, str, datetime], Awaitable[int]]
RECOVERY: list[tuple[str, Recovery]] = [
    ("CDRs", lambda store, node, now: store.close_interrupted(node, now)),
]
"""What start-up closes that a previous run of this node left open (it was killed, the machine
lost power): (what, step), each step given the store, the [node] id and the start time and
returning how many it closed. Queue entries and agent sessions add their own step here."""


async def recover(store: Store, node: str, now: datetime) -> dict[str, int]:
    """Run every RECOVERY step, before the first call is accepted; log what each closed."""
    closed: dict[str, int] = {}
    for what, step in RECOVERY:
        closed[what] = count = await step(store, node, now)
        if count:
            log.warning("closed %d %s left open by a previous run of node %s (interrupted)",
                        count, what, node)
    return closed

#: Builds the SIP endpoint from (handler, transaction layer, clock, limits, trusted hosts):
#: `SipEndpoint` binds real sockets; `pbxcore.testing.inproc` passes one whose wire is in memory.
EndpointFactory = Callable[[SipHandler, TransactionLayer, Callable[[], float], Limits,
                            list[str]], SipEndpoint]


@dataclass
class RunningSwitch:
    """A started switch; `stop()` undoes `start_switch()`."""

    switch: Switch
    endpoint: SipEndpoint
    pacer: Pacer
    deps: CallDeps
    # The control commands (register more here: the ACD's queues, agents, agent); listening
    # on [paths] control only when started with control=True (what `pbx run` does).
    control: ControlServer
    watcher: ConfigWatcher | None = None
    acd: AcdService | None = None  # queues and agents (also deps.acd, for the calls)
    metrics: MetricsServer | None = None  # the Prometheus endpoint ([metrics] listen)
    web: WebServer | None = None  # the wallboard and reports ([web] listen)

    async def apply_config(self, new: Config) -> None:
        """Use `new` for calls that arrive from now on (hot reload)."""
        self.deps.config = new
        if self.acd is not None:
            self.acd.reconfigure(new.queues)  # waiting callers keep their place
            if new.queues:
                install_acd_commands(self.control, self.acd)
        self.deps.sounds = SoundLibrary(new.paths.sounds, new.paths.recordings)
        await self.deps.transports.update(new.routes)  # new pools started, dropped ones closed

    async def reload(self) -> ReloadReport:
        """`pbx reload`: re-read pbx.toml now, through the hot-reload path."""
        watcher = self.watcher or ConfigWatcher(self.deps.config, self.apply_config)
        return await watcher.reload_report("pbx reload")

    async def stop(self, grace: float = 5.0) -> None:
        if self.web is not None:
            await self.web.stop()  # the pages call the control commands: close them first
        await self.control.stop()  # first: no command sees a half-stopped switch
        if self.metrics is not None:
            await self.metrics.stop()
        if self.watcher is not None:
            self.watcher.stop()
        if self.acd is not None:
            await self.acd.stop()  # SHUTDOWN in the journal before the calls end
        await self.switch.shutdown(grace)
        if self.switch.trunks is not None:
            await self.switch.trunks.stop()  # un-REGISTER while the sockets are still open
        await self.endpoint.close()
        await self.pacer.stop()
        await self.deps.transports.close()
        await self.switch.registrar.flush()  # the last REGISTER changes reach the store
        await self.deps.store.close()


async def start_switch(config: Config, *, watch: bool = False,
                       control: bool = False, clock: Callable[[], float] = time.monotonic,
                       make_endpoint: EndpointFactory = SipEndpoint) -> RunningSwitch:
    """Open the store, bind the sockets, start the pacer: ready for calls when this returns.
    `control`: also serve the control socket at [paths] control (refused with ControlError
    while another switch answers there).  `clock` and `make_endpoint` are the in-process
    harness's seams (a fake clock for the SIP timers and registrations, an in-memory wire);
    `pbx run` uses the defaults."""
    commands = ControlServer(config.paths.control)
    if control:
        await commands.claim()  # "already running" before any port is bound
    config.paths.recordings.mkdir(parents=True, exist_ok=True)
    contain.configure(config.scripts.uid, config.scripts.gid)  # [scripts] user
    store = await open_store(config.store_dsn, base_dir=config.base_dir)
    try:
        await recover(store, config.node, datetime.now(UTC))
    except BaseException:
        await store.close()
        raise
    pacer = Pacer()
    await pacer.start()
    holder: dict[str, Switch] = {}

    class _Late:
        """Forwards to the switch, which needs the endpoint, which needs a handler."""

        def __getattr__(self, name: str) -> object:
            return getattr(holder["switch"], name)

    endpoint = make_endpoint(_Late(), TransactionLayer(auto_trying=False), clock,  # type: ignore[arg-type]
                             config.limits, [t.host for t in config.trunks])
    deps = CallDeps(
        config=config, store=store, endpoint=endpoint,
        ports=PortAllocator(config.media.rtp_low, config.media.rtp_high), pacer=pacer,
        sounds=SoundLibrary(config.paths.sounds, config.paths.recordings),
        media_host=config.media.host, transports=build_transports(config.routes),
    )
    await deps.transports.start()  # worker pools are warm before the first call
    switch = Switch(deps, clock)
    holder["switch"] = switch
    try:
        loaded = await switch.registrar.load()  # phones registered before a restart ring now
    except BaseException:
        await deps.transports.close()
        await pacer.stop()
        await store.close()
        raise
    if loaded:
        log.info("registrations: %d live bindings loaded from the store", loaded)
    acd = AcdService(deps)  # the queues (pbxcore/acd); needs the switch's registrar
    deps.acd = acd
    await acd.start()
    try:
        await endpoint.start(ListenSpec(a.transport, a.host, a.port) for a in config.sip.listen)
    except ListenError:  # a busy port: undo what started, `pbx run` prints one line
        await acd.stop()
        await deps.transports.close()
        await pacer.stop()
        await store.close()
        raise
    switch.trunks = await start_trunks(endpoint, config)
    running = RunningSwitch(switch, endpoint, pacer, deps, commands, acd=acd)
    SwitchCommands(switch, commands, running.reload, datetime.now(UTC),
                   time.monotonic()).install()
    if config.queues:
        install_acd_commands(commands, acd)
    if control:
        try:
            await running.control.start()
        except Exception:
            await running.stop()
            raise
    if config.ops.metrics_host is not None:
        running.metrics = MetricsServer(switch, pacer, commands)
        try:
            await running.metrics.start(config.ops.metrics_host, config.ops.metrics_port)
        except OSError as exc:
            running.metrics = None
            await running.stop()
            raise ControlError(f"cannot serve metrics on [metrics] listen "
                               f"{config.ops.metrics_host}:{config.ops.metrics_port}: "
                               f"{exc.strerror or exc}") from None
    if config.web.host is not None:
        secret = load_secret(config.web.secret, config.base_dir / "var")
        running.web = WebServer(context_for(lambda: running.deps.config, commands, store,
                                            secret))
        try:
            await running.web.start(config.web.host, config.web.port)
        except OSError as exc:
            running.web = None
            await running.stop()
            raise ControlError(f"cannot serve the web pages on [web] listen "
                               f"{config.web.host}:{config.web.port}: "
                               f"{exc.strerror or exc}") from None
    if watch:
        running.watcher = ConfigWatcher(config, running.apply_config)
        running.watcher.start()
    return running


async def serve(config: Config, *, watch: bool = True) -> None:
    # Orphaned descendants of scripts come to us, so a run's leftovers can be killed (contain).
    contain.enable()
    for path, line, reason in config.warnings:  # e.g. a route's program missing: its calls
        log.warning("%s:%d: warning: %s", path, line, reason)  # get the route's fallback
    running = await start_switch(config, watch=watch, control=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    addresses = ", ".join(f"{s.transport}:{s.host}:{s.port}" for s in running.endpoint.bound)
    log.info("pbxcore ready on %s (%d routes, %d users)", addresses, len(config.routes),
             len(config.users))
    await stop.wait()
    log.info("shutting down: hanging up %d live calls", len(running.switch.calls))
    await running.stop()


def run_forever(config: Config, *, watch: bool = True, loop: str = "asyncio",
                log_format: str | None = None) -> None:
    """Run the switch in the foreground until SIGINT/SIGTERM (what `pbx run` does).

    `loop`: "asyncio" (the default: its subprocess spawn uses vfork, so a script per event is
    cheapest), "uvloop" (libuv: per-packet RTP relaying costs about a third of the standard
    loop's, but libuv spawns with fork() and waits for the exec on the loop: bench/README.md),
    or "auto" (uvloop when installed).  `log_format`: "text" or "json" (default: [log] format)."""
    setup_logging(log_format or config.ops.log_format)
    runner = asyncio.run
    if loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise
        else:
            runner = uvloop.run
    log.info("event loop: %s", "uvloop" if runner is not asyncio.run else "asyncio")
    before, now = raise_nofile_limit()  # issue 9 item 6: 1,024 descriptors go fast
    log.info("open files limit: %d%s", now, f" (raised from {before})" if now != before else "")
    runner(serve(config, watch=watch))

