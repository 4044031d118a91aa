"""The web server's data: the live feed (SSE), reports, CDR search, traces, recordings and the
supervisor's two actions.  Figures come from the same code `pbx report` runs (pbxcore.report and
pbxcore.cli.report_cmd's JSON shape); live state from the control commands, in-process."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from pbxcore.cli.common import parse_since
from pbxcore.cli.report_cmd import all_reports, to_json
from pbxcore.config import Config
from pbxcore.control.protocol import CommandError
from pbxcore.report.figures import DEFAULT_SHORT_ABANDON, GROUPINGS, SL_DEFINITIONS, report
from pbxcore.report.load import Context, TooManyRows, filtered_cdrs, load
from pbxcore.report.model import DIRECTIONS, Filters, Period

log = logging.getLogger("pbxcore.web")
MAX_CDRS = 500
KEEPALIVE = 15.0  # seconds: a comment line keeps proxies from closing a quiet stream


def _ctx(request: web.Request) -> Any:
    from pbxcore.web.app import ctx

    return ctx(request)


def report_context(config: Config) -> Context:
    """What `pbx report` takes from pbx.toml (pbxcore.cli.filters.context), from the running
    config."""
    return Context(
        extensions=frozenset(u.extension for u in config.users),
        service_level={q.name: q.service_level for q in config.queues},
        members={q.name: frozenset(m.extension for m in q.members) for q in config.queues})


def _period(request: web.Request, now: datetime, default: str | None) -> tuple[
        datetime | None, datetime | None]:
    q = request.query
    try:
        start = parse_since(q["from"], now) if q.get("from") else (
            parse_since(default, now) if default else None)
        end = parse_since(q["to"], now) if q.get("to") else None
    except Exception as exc:  # parse_since's BadParameter: the same words `pbx report` says
        raise web.HTTPBadRequest(text=f"bad period: {getattr(exc, 'message', exc)}") from None
    if start is not None and end is not None and end <= start:
        raise web.HTTPBadRequest(text="'to' is not after 'from'")
    return start, end


def _filters(request: web.Request) -> Filters:
    q = request.query
    direction = q.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        raise web.HTTPBadRequest(text=f"direction must be one of {', '.join(DIRECTIONS)}")
    try:
        min_duration = float(q["min_duration"]) if q.get("min_duration") else None
    except ValueError:
        raise web.HTTPBadRequest(text="min_duration must be a number") from None
    return Filters(queue=q.get("queue") or None, agent=q.get("agent") or None,
                   direction=direction, number=q.get("number") or None,  # type: ignore[arg-type]
                   min_duration=min_duration)


async def _report_data(request: web.Request) -> tuple[Any, Any, Period, Filters, str, float]:
    c = _ctx(request)
    now = datetime.now(UTC)
    start, end = _period(request, now, "today")
    assert start is not None
    p = Period(start, end or now)
    f = _filters(request)
    by = request.query.get("by", "day")
    if by not in GROUPINGS:
        raise web.HTTPBadRequest(text=f"by must be one of {', '.join(GROUPINGS)}")
    try:
        short = float(request.query.get("short_abandon", DEFAULT_SHORT_ABANDON))
    except ValueError:
        raise web.HTTPBadRequest(text="short_abandon must be a number") from None
    try:
        data, agents = await load(c.store, p, f, report_context(c.config()), now=now)
    except TooManyRows as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return data, agents, p, f, by, short


async def report_json(request: web.Request) -> web.StreamResponse:
    data, agents, p, f, by, short = await _report_data(request)
    rep = report(data, by, agents, short_abandon=short)
    sl = request.query.get("sl", "perf")
    if sl not in SL_DEFINITIONS:
        raise web.HTTPBadRequest(text=f"sl must be one of {', '.join(SL_DEFINITIONS)}")
    return web.json_response(to_json(rep, agents, p, sl=sl, short_abandon=short, f=f))


async def report_file(request: web.Request) -> web.StreamResponse:
    from pbxcore.report.export import write_csv, write_xlsx

    data, agents, p, _f, by, short = await _report_data(request)
    kind = request.match_info["kind"]
    with tempfile.TemporaryDirectory(prefix="pbx-web-") as tmp:
        out = Path(tmp) / f"report.{kind}"
        if kind == "csv":
            rep = report(data, by, agents, short_abandon=short)
            await asyncio.to_thread(write_csv, out, rep, agents)
            ctype = "text/csv; charset=utf-8"
        else:
            reports = all_reports(data, agents, short)
            await asyncio.to_thread(write_xlsx, out, reports, agents, p)
            ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        body = out.read_bytes()
    name = f"pbx-report-{p.since:%Y%m%d}-{p.until:%Y%m%d}-{by}.{kind}"
    return web.Response(body=body, headers={"Content-Type": ctype,
                                            "Content-Disposition": f'attachment; filename="{name}"'})


async def cdrs(request: web.Request) -> web.StreamResponse:
    c = _ctx(request)
    start, end = _period(request, datetime.now(UTC), None)
    config = c.config()
    found = await filtered_cdrs(c.store, since=start, until=end, filters=_filters(request),
                                extensions=[u.extension for u in config.users], limit=MAX_CDRS)
    return web.json_response({"cdrs": [x.to_json() for x in found], "limit": MAX_CDRS})


async def cdr(request: web.Request) -> web.StreamResponse:
    c = _ctx(request)
    call_id = request.match_info["call_id"]
    found = await c.store.cdr(call_id)
    if found is None:
        raise web.HTTPNotFound(text="no such call")
    trace = await c.store.trace(call_id)
    return web.json_response({"cdr": found.to_json(), "trace": [t.to_json() for t in trace]})


async def recording(request: web.Request) -> web.StreamResponse:
    """One of a call's recordings, only a path its CDR lists and only under [paths]
    recordings; aiohttp's FileResponse answers Range requests (206) for seeking."""
    c = _ctx(request)
    found = await c.store.cdr(request.match_info["call_id"])
    try:
        n = int(request.match_info["n"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if found is None or not 1 <= n <= len(found.recordings):
        raise web.HTTPNotFound(text="no such recording")
    base = c.config().paths.recordings.resolve()
    path = (base / found.recordings[n - 1]).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise web.HTTPNotFound(text="recording file missing")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


async def top(request: web.Request) -> web.StreamResponse:
    from pbxcore.web.live import picture

    c = _ctx(request)
    return web.json_response(await picture(c.control.call, c.config))


async def live(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: `event: top` with the picture, at least once a second."""
    c = _ctx(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = c.feed.subscribe()
    try:
        while True:
            try:
                data = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                data = b": keepalive\n\n"
            await response.write(data)
    except ConnectionResetError:
        pass  # the page was closed
    finally:
        c.feed.unsubscribe(queue)
    return response


async def _command(request: web.Request, name: str, args: dict[str, Any]) -> web.StreamResponse:
    from pbxcore.web.app import SESSION

    # Who did it, for the supervisor's audit trail: the name is from [[web.users]], the args
    # are repr()'d (a call id or an extension the page sent is data, not log syntax).
    log.info("web: %s runs %s %r", request[SESSION].name, name, args)
    try:
        result = await _ctx(request).control.call(name, args)
    except CommandError as exc:
        return web.json_response({"error": exc.code, "message": exc.message}, status=409)
    return web.json_response({"result": result})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="a JSON body is needed") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is needed")
    return body


async def agent(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    op, extension, reason = body.get("op"), body.get("extension"), body.get("reason")
    if op not in ("pause", "unpause") or not isinstance(extension, str):
        raise web.HTTPBadRequest(text='needs "op" (pause|unpause) and "extension"')
    args: dict[str, Any] = {"op": op, "extension": extension}
    if isinstance(reason, str) and reason and op == "pause":
        args["reason"] = reason[:64]
    return await _command(request, "agent", args)


async def hangup(request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    call_id = body.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise web.HTTPBadRequest(text='needs "call_id"')
    return await _command(request, "hangup", {"call_id": call_id})


def routes(app: web.Application) -> None:
    app.router.add_get("/api/live", live)
    app.router.add_get("/api/top", top)
    app.router.add_get("/api/report", report_json)
    app.router.add_get("/api/report.{kind:(csv|xlsx)}", report_file)
    app.router.add_get("/api/cdrs", cdrs)
    app.router.add_get("/api/cdr/{call_id}", cdr)
    app.router.add_get("/api/recording/{call_id}/{n}", recording)
    app.router.add_post("/api/agent", agent)
    app.router.add_post("/api/hangup", hangup)
