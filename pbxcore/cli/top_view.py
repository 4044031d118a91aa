"""What `pbx top` draws: a pure function of one `top` answer, the pane and the screen size.

No I/O and no clock here (the time shown is the switch's), so the same data always renders the
same screen: tests/unit/cli/test_top_view.py snapshots it at 80x24 and 120x40.  Every table is
cut to the rows that fit, with a "+N more" line, so nothing scrolls off a small SSH window, and
every cell is a single escaped line (caller text never moves the cursor or breaks the layout).
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pbxcore.acd.spec import AGENT_STATES
from pbxcore.cli.control import cell, duration
from pbxcore.cli.queues_cmd import SHORT
from pbxcore.script.sanitize import printable

PANES = ("calls", "queues", "agents", "trunks")
HEADER = 3  # lines above the pane: the figures, the gauge line, the pane tabs
TABLE_CHROME = 3  # a table's title, header and header rule


def render_top(data: dict[str, Any], pane: str, width: int, height: int,
               error: str | None = None) -> RenderableType:
    """The whole screen: header, pane tabs, the pane cut to `height` lines."""
    body_rows = max(1, height - HEADER - 1)
    body = {"calls": _calls_pane, "queues": _queues_pane, "agents": _agents_pane,
            "trunks": _trunks_pane}[pane](data, width, body_rows)
    return Group(*_header(data, width, error), _tabs(pane), body)


def _header(data: dict[str, Any], width: int, error: str | None) -> list[Text]:
    used, cap = data.get("lines_in_use", 0), data.get("capacity")
    first = Text()
    first.append("pbx top", "bold")
    first.append(f"  {printable(data.get('time', ''))}  up {duration(data.get('uptime_seconds'))}")
    if error:
        first.append(f"  {printable(error)}", "bold red")
    second = Text()
    second.append("lines ")
    if cap:
        share = used / cap
        style = "bold red" if share >= 0.9 else "yellow" if share >= 0.7 else "green"
        second.append(f"{used}/{cap} ", style)
        bar = 10
        filled = min(bar, round(share * bar))
        second.append("#" * filled, style)
        second.append("." * (bar - filled), "dim")
        second.append(f" {share * 100:.0f}%", style)
    else:
        second.append(f"{used}", "bold")
        second.append(" (no capacity set)", "dim")
    errors = data.get("script_errors_last_minute", 0)
    second.append(f"  {data.get('calls_per_second', 0):.2f} calls/s  script errors/min ")
    second.append(str(errors), "bold red" if errors else "green")
    alerts = [q["name"] for q in data.get("queues") or [] if q.get("alert")]
    if alerts:
        second.append("  ALERT " + ", ".join(printable(a) for a in alerts), "bold red")
    first.truncate(width, overflow="ellipsis")
    second.truncate(width, overflow="ellipsis")
    return [first, second]


def _tabs(pane: str) -> Text:
    tabs = Text()
    for i, name in enumerate(PANES, 1):
        tabs.append(f" {i} {name} ", "reverse bold" if name == pane else "")
        tabs.append(" ")
    tabs.append(" tab next  q quit", "dim")
    return tabs


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True,
                 pad_edge=False, show_edge=False, expand=False)


def _fit(table: Table, rows: list[list[Text]], room: int) -> Table:
    """Add as many of `rows` as fit in `room` lines; the last one says how many did not."""
    fits = max(0, room - TABLE_CHROME)
    if len(rows) > fits:
        shown, more = rows[:max(0, fits - 1)], len(rows) - max(0, fits - 1)
        for row in shown:
            table.add_row(*row)
        table.add_row(Text(f"+{more} more", "dim"), *[Text("")] * (len(table.columns) - 1))
    else:
        for row in rows:
            table.add_row(*row)
    return table


def _one_line(value: object, style: str = "") -> Text:
    text = cell(value, style)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _calls_pane(data: dict[str, Any], width: int, room: int) -> RenderableType:
    calls = data.get("calls") or []
    counts = _table("by route / DID")
    counts.add_column("route", no_wrap=True, overflow="ellipsis", max_width=24)
    counts.add_column("calls", justify="right", no_wrap=True)
    counts.add_column("DID", no_wrap=True, overflow="ellipsis", max_width=18)
    counts.add_column("calls", justify="right", no_wrap=True)
    routes, dids = data.get("by_route") or [], data.get("by_did") or []
    pairs = []
    for i in range(max(len(routes), len(dids))):
        r = routes[i] if i < len(routes) else None
        d = dids[i] if i < len(dids) else None
        pairs.append([_one_line(r["route"] if r else ""), _one_line(r["calls"] if r else ""),
                      _one_line(d["did"] if d else ""), _one_line(d["calls"] if d else "")])
    count_room = min(len(pairs) + TABLE_CHROME, max(TABLE_CHROME + 1, room // 3)) if pairs else 0
    parts: list[RenderableType] = []
    if pairs:
        parts.append(_fit(counts, pairs, count_room))
    live = max(len(calls), data.get("lines_in_use", 0))
    title = "1 live call" if live == 1 else f"{live} live calls"
    if live > len(calls):
        title += f" (the {len(calls)} oldest sent)"  # the `top` request's max_calls
    table = _table(title)
    table.add_column("call id", no_wrap=True)
    table.add_column("caller", no_wrap=True, overflow="ellipsis", max_width=22)
    table.add_column("called", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("state", no_wrap=True, overflow="ellipsis")
    table.add_column("time", justify="right", no_wrap=True)
    if width >= 100:
        table.add_column("route", no_wrap=True, overflow="ellipsis", max_width=20)
        table.add_column("handler", no_wrap=True, overflow="ellipsis")
    rows = []
    for c in calls:
        state = c["state"]
        if c.get("detail") and state not in ("ringing", "in script"):
            state = f"bridged to {c['detail']}" if state == "bridged" else f"{state}: {c['detail']}"
        row = [_one_line(c["call_id"]), _one_line(c["caller"]), _one_line(c["called"]),
               _one_line(state), _one_line(duration(c.get("duration")))]
        if width >= 100:
            row += [_one_line(c.get("route")), _one_line(c.get("agent") or c.get("script"))]
        rows.append(row)
    parts.append(_fit(table, rows, room - count_room) if calls
                 else Text("no live calls", "dim"))
    return Group(*parts)


def _queues_pane(data: dict[str, Any], width: int, room: int) -> RenderableType:
    queues = data.get("queues")
    if queues is None:
        return Text("no queues configured", "dim")
    table = _table("queues")
    table.add_column("queue", no_wrap=True, overflow="ellipsis", max_width=20)
    table.add_column("waiting", justify="right", no_wrap=True)
    table.add_column("longest", justify="right", no_wrap=True)
    table.add_column("agents", no_wrap=True, overflow="ellipsis")
    table.add_column("SL today", justify="right", no_wrap=True)
    table.add_column("alert", no_wrap=True, overflow="ellipsis", style="bold red")
    rows = []
    for q in queues:
        sl = q.get("sl_today")
        counts = q.get("agents") or {}
        agents = " ".join(f"{counts[s]} {SHORT.get(s, s)}" for s in AGENT_STATES
                          if counts.get(s) and s != "logged_out") or "none in"
        alert = q.get("alert")
        rows.append([_one_line(q["name"]), _one_line(q["waiting"]),
                     _one_line(duration(q.get("longest_wait"))), _one_line(agents),
                     _one_line("" if sl is None else f"{sl:.0f}%/{q['service_level']:g}s"),
                     _one_line(_alert(alert))])
    return _fit(table, rows, room)


def _alert(alert: dict[str, Any] | None) -> str:
    if not alert:
        return ""
    if alert["figure"] == "longest_wait":
        return f"wait {duration(alert['value'])}>={duration(alert['threshold'])}"
    return f"{alert['figure']} {alert['value']:g}>={alert['threshold']:g}"


def _agents_pane(data: dict[str, Any], width: int, room: int) -> RenderableType:
    agents = data.get("agents")
    if agents is None:
        return Text("no queues configured", "dim")
    by_state: dict[str, int] = {}
    for a in agents:
        by_state[a["state"]] = by_state.get(a["state"], 0) + 1
    summary = Text(" ".join(f"{by_state[s]} {s}" for s in AGENT_STATES if by_state.get(s))
                   or "no agents")
    table = _table("agents")
    table.add_column("agent", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("state", no_wrap=True, overflow="ellipsis")
    table.add_column("for", justify="right", no_wrap=True)
    table.add_column("calls", justify="right", no_wrap=True)
    table.add_column("queues", no_wrap=True, overflow="ellipsis")
    # Longest in their state first within each state: who has waited or talked longest.
    order = {s: i for i, s in enumerate(AGENT_STATES)}
    rows = []
    for a in sorted(agents, key=lambda a: (order.get(a["state"], 99),
                                           -(a.get("state_seconds") or 0))):
        who = f"{a['extension']} ({a['name']})" if a.get("name") else a["extension"]
        state = f"{a['state']} ({a['reason']})" if a.get("reason") else a["state"]
        rows.append([_one_line(who), _one_line(state), _one_line(duration(a.get("state_seconds"))),
                     _one_line(a.get("calls_today", 0)),
                     _one_line(", ".join(a.get("queues") or []))])
    return Group(summary, _fit(table, rows, room - 1))


def _trunks_pane(data: dict[str, Any], width: int, room: int) -> RenderableType:
    trunks = data.get("trunks") or []
    phones = Text(f"{data.get('registrations', 0)} phones registered")
    if not trunks:
        return Group(phones, Text("no trunks configured", "dim"))
    table = _table("trunks")
    table.add_column("trunk", no_wrap=True, overflow="ellipsis", max_width=30)
    table.add_column("registration", no_wrap=True, overflow="ellipsis")
    rows = []
    for t in trunks:
        status = str(t["status"])
        good = status.startswith("registered") or status == "not registering"
        rows.append([_one_line(t["name"]), _one_line(status, "green" if good else "bold red")])
    return Group(phones, _fit(table, rows, room - 1))
