"""The Prometheus endpoint (`[metrics] listen`): GET /metrics on the switch's own event loop.

Why prometheus-client rather than writing the text format by hand: its exposition encoder gets
the escaping, the histogram's cumulative `_bucket`/`_sum`/`_count` series and the content type
right, and OpenMetrics comes for free; we only use its metric families and `generate_latest`.
It is served by a small asyncio HTTP/1.0 handler here instead of `start_http_server` (a thread):
a scrape then reads live state on the loop that owns it, with no locking.

What is read at scrape time (a custom collector, nothing on hot paths): the `top` control
answer (live calls, queues, agents, registrations, trunks) and the pacer's counters.  The true
counters — calls ended by route and disposition, script runs by transport with their latency,
script errors, RTP packets of ended calls — are `SwitchStats` increments (pbxcore/call/stats.py).
Labels are bounded: route and queue names, transports, dispositions, agent states, trunk names;
never numbers or call ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pbxcore.acd.spec import AGENT_STATES
from pbxcore.call.stats import LATENCY_BUCKETS
from pbxcore.call.switch import Switch
from pbxcore.control.server import ControlServer
from pbxcore.media.pacer import Pacer

log = logging.getLogger("pbxcore.metrics")

MAX_REQUEST = 8192  # bytes of request line and headers we read before giving up
READ_TIMEOUT = 5.0


class SwitchCollector(Collector):
    """Turns one snapshot (taken on the loop just before the scrape is encoded) into metrics."""

    def __init__(self, switch: Switch, pacer: Pacer) -> None:
        self.switch = switch
        self.pacer = pacer
        self.snapshot: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        top = self.snapshot
        stats = self.switch.deps.stats
        g = GaugeMetricFamily("pbx_calls_active", "Live calls now.")
        g.add_metric([], top.get("lines_in_use", 0))
        yield g
        g = GaugeMetricFamily("pbx_lines_capacity", "[monitor] capacity (0: not set).")
        g.add_metric([], top.get("capacity") or 0)
        yield g
        c = CounterMetricFamily("pbx_calls", "Calls ended, by route and disposition.",
                                labels=["route", "disposition"])
        for (route, disposition), n in sorted(stats.calls_total.items()):
            c.add_metric([route, disposition], n)
        yield c
        h = HistogramMetricFamily("pbx_script_run_seconds",
                                  "Script run latency (exec to reaped, or the webhook's round "
                                  "trip), by transport.", labels=["transport"])
        for transport, lat in sorted(stats.script_runs.items()):
            buckets = [(f"{b:g}", n) for b, n in zip(LATENCY_BUCKETS, lat.counts, strict=True)]
            h.add_metric([transport], buckets + [("+Inf", lat.count)], lat.total)
        yield h
        c = CounterMetricFamily("pbx_script_errors", "Script runs that failed (exit status, "
                                "timeout, unusable output).")
        c.add_metric([], stats.script_errors)
        yield c
        waiting = GaugeMetricFamily("pbx_queue_waiting", "Callers waiting.", labels=["queue"])
        longest = GaugeMetricFamily("pbx_queue_longest_wait_seconds",
                                    "The longest current wait.", labels=["queue"])
        for q in top.get("queues") or []:
            waiting.add_metric([q["name"]], q["waiting"])
            longest.add_metric([q["name"]], q.get("longest_wait") or 0)
        yield waiting
        yield longest
        agents = GaugeMetricFamily("pbx_agents", "Agents by state.", labels=["state"])
        by_state = {s: 0 for s in AGENT_STATES}
        for a in top.get("agents") or []:
            by_state[a["state"]] = by_state.get(a["state"], 0) + 1
        for state, n in by_state.items():
            agents.add_metric([state], n)
        yield agents
        g = GaugeMetricFamily("pbx_registrations", "Registered phone bindings.")
        g.add_metric([], top.get("registrations", 0))
        yield g
        g = GaugeMetricFamily("pbx_trunk_registered", "1 while the trunk's registration holds.",
                              labels=["trunk"])
        for t in top.get("trunks") or []:
            g.add_metric([t["name"]], 1 if str(t["status"]).startswith("registered") else 0)
        yield g
        sent = stats.rtp_sent_ended + sum(c.rtp_sent for c in self.switch.calls.values())
        c = CounterMetricFamily("pbx_rtp_packets_sent", "RTP packets the switch's media sent "
                                "(prompts, music, tones; not relayed bridge audio).")
        c.add_metric([], sent)
        yield c
        pacer = self.pacer.stats()
        c = CounterMetricFamily("pbx_rtp_ticks_late", "20 ms send ticks run late, to catch up.")
        c.add_metric([], pacer.caught_up)
        yield c
        c = CounterMetricFamily("pbx_rtp_ticks_skipped", "20 ms send ticks dropped: the loop "
                                "was too late to catch up.")
        c.add_metric([], pacer.skipped)
        yield c


class MetricsServer:
    """GET /metrics over HTTP/1.0, one request per connection."""

    def __init__(self, switch: Switch, pacer: Pacer, control: ControlServer) -> None:
        self.control = control
        self.collector = SwitchCollector(switch, pacer)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_REQUEST)
        log.info("metrics on http://%s:%d/metrics", host, port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def scrape(self) -> bytes:
        self.collector.snapshot = await self.control.call("top")
        return generate_latest(self.registry)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) < 2 or parts[0] not in (b"GET", b"HEAD"):
                await _send(writer, 405, b"text/plain", b"GET /metrics\n")
            elif parts[1].split(b"?")[0] != b"/metrics":
                await _send(writer, 404, b"text/plain", b"see /metrics\n")
            else:
                body = await self.scrape()
                await _send(writer, 200, CONTENT_TYPE_LATEST.encode(),
                            b"" if parts[0] == b"HEAD" else body)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        except Exception:
            log.exception("metrics scrape failed")
            with contextlib.suppress(Exception):
                await _send(writer, 500, b"text/plain", b"scrape failed\n")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _send(writer: asyncio.StreamWriter, status: int, ctype: bytes, body: bytes) -> None:
    reason = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed",
              500: b"Internal Server Error"}[status]
    writer.write(b"HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n" % (status, reason, ctype, len(body)) + body)
    await writer.drain()
