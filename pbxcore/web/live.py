"""The wallboard's live picture, and its push to every open page (Server-Sent Events).

The picture is the control socket's `top` answer (queues, agents, lines, trunks: the same
state `pbx top` shows), called in-process, plus what only the config knows: each queue's alert
thresholds turned into a level (ok / amber / red) and the [web] sl_target.  A feed polls it every
POLL seconds and sends it when what a supervisor watches changed (waiting counts, agent states,
lines, trunks), and at least every second (the timers), so a change reaches the page within a
second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pbxcore.config import Config

POLL = 0.2  # seconds between looks at the switch
EVERY = 1.0  # seconds: send at least this often (the wait and state timers move)
MAX_CALLS = 200  # calls listed on the page (the counts are exact)

Caller = Callable[[str, dict[str, Any]], Awaitable[Any]]


def level(value: float, threshold: float | None, clear: float) -> str:
    """red at the alert threshold, amber from threshold * alert_clear (where the alert, once
    raised, would stay raised), ok below."""
    if threshold is None or threshold <= 0:
        return "ok"
    if value >= threshold:
        return "red"
    return "amber" if value >= threshold * clear else "ok"


def decorate(top: dict[str, Any], config: Config) -> dict[str, Any]:
    """`top` plus, per queue, wait_level / waiting_level and the SL target."""
    for q in top.get("queues") or []:
        spec = config.queue(q["name"])
        alert = spec.alert if spec else None
        clear = alert.clear_ratio if alert else 0.8
        # Without alert_longest_wait the queue's own service_level is the line not to cross.
        wait_at = alert.longest_wait if alert and alert.longest_wait else q.get("service_level")
        q["wait_alert"] = wait_at
        q["waiting_alert"] = alert.waiting if alert else None
        q["wait_level"] = level(q.get("longest_wait") or 0.0, wait_at, clear)
        q["waiting_level"] = level(q.get("waiting") or 0, alert.waiting if alert else None, clear)
        q["sl_target"] = config.web.sl_target
    return top


def signature(top: dict[str, Any]) -> str:
    """What a change is: everything but the running timers."""
    queues = [(q["name"], q["waiting"], q["agents"], q["answered_today"], q["abandoned_today"],
               q.get("alert")) for q in top.get("queues") or []]
    agents = [(a["extension"], a["state"], a["reason"]) for a in top.get("agents") or []]
    calls = [(c["call_id"], c["state"]) for c in top.get("calls") or []]
    return json.dumps([queues, agents, calls, top.get("lines_in_use"), top.get("trunks")],
                      default=str)


async def picture(call: Caller, config: Callable[[], Config]) -> dict[str, Any]:
    return decorate(await call("top", {"max_calls": MAX_CALLS}), config())


class Feed:
    """One poller for all pages: subscribers get the same encoded event."""

    def __init__(self, call: Caller, config: Callable[[], Config], *,
                 poll: float = POLL, every: float = EVERY) -> None:
        self._call, self._config = call, config
        self.poll, self.every = poll, every
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task[None] | None = None
        self.last: bytes | None = None

    def subscribe(self) -> asyncio.Queue[bytes]:
        q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)
        self._subscribers.add(q)
        if self.last is not None:
            q.put_nowait(self.last)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="web-feed")
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes]) -> None:
        self._subscribers.discard(q)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sent_sig, sent_at = "", 0.0
        while self._subscribers:
            try:
                top = await picture(self._call, self._config)
            except Exception as exc:  # the switch runs on; the page says the feed failed
                top = {"error": f"{type(exc).__name__}: {exc}"}
            sig = signature(top) if "error" not in top else "error"
            now = loop.time()
            if sig != sent_sig or now - sent_at >= self.every:
                data = json.dumps(top, ensure_ascii=True, default=str)
                self.last = f"event: top\ndata: {data}\n\n".encode()
                for q in list(self._subscribers):
                    if q.full():  # a slow page gets the newest picture, not a backlog
                        with contextlib.suppress(asyncio.QueueEmpty):
                            q.get_nowait()
                    q.put_nowait(self.last)
                sent_sig, sent_at = sig, now
            await asyncio.sleep(self.poll)
        self._task = None
        self.last = None  # nobody watched since: the next page must not see a stale picture

    async def stop(self) -> None:
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
