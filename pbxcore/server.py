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
from collections.abc import Callable
from dataclasses import dataclass

from pbxcore.call.call import CallDeps
from pbxcore.call.switch import Switch
from pbxcore.call.trunks import start_trunks
from pbxcore.config import Config
from pbxcore.config_watch import ConfigWatcher
from pbxcore.media.pacer import Pacer
from pbxcore.media.ports import PortAllocator
from pbxcore.media.sounds import SoundLibrary
from pbxcore.script.transports import build_transports
from pbxcore.sip.transaction import TransactionLayer
from pbxcore.store import open_store
from pbxcore.transport.sip_endpoint import ListenSpec, SipEndpoint, SipHandler

log = logging.getLogger("pbxcore")

#: Builds the SIP endpoint from (handler, transaction layer, clock): `SipEndpoint` binds real
#: sockets; `pbxcore.testing.inproc` passes one whose wire is in memory.
EndpointFactory = Callable[[SipHandler, TransactionLayer, Callable[[], float]], SipEndpoint]


@dataclass
class RunningSwitch:
    """A started switch; `stop()` undoes `start_switch()`."""

    switch: Switch
    endpoint: SipEndpoint
    pacer: Pacer
    deps: CallDeps
    watcher: ConfigWatcher | None = None

    async def apply_config(self, new: Config) -> None:
        """Use `new` for calls that arrive from now on (hot reload)."""
        self.deps.config = new
        self.deps.sounds = SoundLibrary(new.paths.sounds, new.paths.recordings)
        await self.deps.transports.update(new.routes)  # new pools started, dropped ones closed

    async def stop(self, grace: float = 5.0) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        await self.switch.shutdown(grace)
        if self.switch.trunks is not None:
            await self.switch.trunks.stop()  # un-REGISTER while the sockets are still open
        await self.endpoint.close()
        await self.pacer.stop()
        await self.deps.transports.close()
        await self.deps.store.close()


async def start_switch(config: Config, *, watch: bool = False,
                       clock: Callable[[], float] = time.monotonic,
                       make_endpoint: EndpointFactory = SipEndpoint) -> RunningSwitch:
    """Open the store, bind the sockets, start the pacer: ready for calls when this returns.

    `clock` and `make_endpoint` are the in-process harness's seams (a fake clock for the SIP
    timers and registrations, an in-memory wire); `pbx run` uses the defaults."""
    config.paths.recordings.mkdir(parents=True, exist_ok=True)
    store = await open_store(config.store_dsn, base_dir=config.base_dir)
    pacer = Pacer()
    await pacer.start()
    holder: dict[str, Switch] = {}

    class _Late:
        """Forwards to the switch, which needs the endpoint, which needs a handler."""

        def __getattr__(self, name: str) -> object:
            return getattr(holder["switch"], name)

    endpoint = make_endpoint(_Late(), TransactionLayer(auto_trying=False), clock)  # type: ignore[arg-type]
    deps = CallDeps(
        config=config, store=store, endpoint=endpoint,
        ports=PortAllocator(config.media.rtp_low, config.media.rtp_high), pacer=pacer,
        sounds=SoundLibrary(config.paths.sounds, config.paths.recordings),
        media_host=config.media.host, transports=build_transports(config.routes),
    )
    await deps.transports.start()  # worker pools are warm before the first call
    switch = Switch(deps, clock)
    holder["switch"] = switch
    await endpoint.start(ListenSpec(a.transport, a.host, a.port) for a in config.sip.listen)
    switch.trunks = await start_trunks(endpoint, config)
    running = RunningSwitch(switch, endpoint, pacer, deps)
    if watch:
        running.watcher = ConfigWatcher(config, running.apply_config)
        running.watcher.start()
    return running


async def serve(config: Config, *, watch: bool = True) -> None:
    running = await start_switch(config, watch=watch)
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


def run_forever(config: Config, *, watch: bool = True, loop: str = "asyncio") -> None:
    """Run the switch in the foreground until SIGINT/SIGTERM (what `pbx run` does).

    `loop`: "asyncio" (the default: its subprocess spawn uses vfork, so a script per event is
    cheapest), "uvloop" (libuv: per-packet RTP relaying costs about a third of the standard
    loop's, but libuv spawns with fork() and waits for the exec on the loop: bench/README.md),
    or "auto" (uvloop when installed)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    runner(serve(config, watch=watch))

