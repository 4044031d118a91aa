#!/usr/bin/env python3
"""CRM lookup: greet the caller by what the customer database knows about their number.

    VIP:      set PRIORITY=vip MANAGER=<their personal manager's extension>, the VIP greeting
    known:    set CUSTOMER_NAME, LAST_ORDER, LAST_ORDER_DATE, "welcome back", the last order read out
    unknown:  set PRIORITY=new, the first-time caller introduction

The variables travel with the call: the agent's screen (and every later event, as PBX_VAR_*)
sees them. A VIP is then put through to their manager (`transfer`); if the manager does not
answer, the `dial` event brings an apology. Everyone else hears the greeting and, until queues
land, the call ends there (then: `queue support`).

The database is CRM_DSN from the route's env:
    unset or sqlite:///crm.db           SQLite, a path relative to this file; created from crm.sql
                                        next to this file if it does not exist yet
    postgresql://user@host/db?...       PostgreSQL through psycopg (the interpreter that runs this
                                        file must have it: e.g. the route's env PATH puts a
                                        virtualenv's bin first, since the shebang is /usr/bin/env)
A database that is down does not lose the call: the caller is treated as unknown and the error
goes to the trace (stderr) and a `log` line.

The output is JSON (the action list as an array): names from a database can hold any character,
and JSON needs no quoting rules. Python 3 standard library, plus psycopg for PostgreSQL.
"""

import json
import os
import re
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CUSTOMER = "SELECT name, tier, manager FROM customers WHERE phone = %s"
LAST_ORDER = "SELECT number, placed FROM orders WHERE phone = %s ORDER BY placed DESC, number DESC LIMIT 1"


def sqlite_db(dsn: str) -> sqlite3.Connection:
    path = Path(dsn.removeprefix("sqlite://").removeprefix("/") or "crm.db")
    path = path if path.is_absolute() else HERE / path
    if not path.exists():
        # Build the seed in a temporary file and rename it: two first calls at once both succeed.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        with sqlite3.connect(tmp) as db:
            db.executescript((HERE / "crm.sql").read_text(encoding="utf-8"))
        db.close()
        os.replace(tmp, path)
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def query(dsn: str, phone: str) -> tuple[Any, Any]:
    """(name, tier, manager) or None, and (number, placed) of the latest order or None."""
    if dsn.startswith(("postgresql://", "postgres://")):
        import psycopg  # only needed for PostgreSQL

        with psycopg.connect(dsn, connect_timeout=2) as pg:
            customer = pg.execute(CUSTOMER, (phone,)).fetchone()
            order = pg.execute(LAST_ORDER, (phone,)).fetchone()
        return customer, order
    if not dsn.startswith("sqlite:"):
        raise ValueError("CRM_DSN must start with sqlite:// or postgresql://")
    db = sqlite_db(dsn)
    try:
        customer = db.execute(CUSTOMER.replace("%s", "?"), (phone,)).fetchone()
        order = db.execute(LAST_ORDER.replace("%s", "?"), (phone,)).fetchone()
    finally:
        db.close()
    return customer, order


def on_incoming(event: dict[str, Any]) -> list[dict[str, Any]]:
    # The raw caller number from the JSON event; keep a leading + and the digits.
    phone = re.sub(r"(?!^\+)[^0-9]", "", str(event.get("caller", "")))[:32]
    try:
        customer, order = query(os.environ.get("CRM_DSN", "sqlite:///crm.db"), phone)
    except Exception as exc:  # noqa: BLE001 - any database failure: serve the call anyway
        print(f"crm lookup failed: {exc!r}", file=sys.stderr)
        return [{"action": "answer"},
                {"action": "set", "vars": {"PRIORITY": "new", "CRM": "unavailable"}},
                {"action": "log", "text": f"crm unavailable: {type(exc).__name__}"},
                {"action": "play", "files": ["crm-lookup/first-time"]},
                {"action": "hangup"}]
    if customer is None:
        return [{"action": "answer"},
                {"action": "set", "vars": {"PRIORITY": "new"}},
                {"action": "log", "text": f"first-time caller {phone or 'unknown'}"},
                {"action": "play", "files": ["crm-lookup/first-time"]},
                {"action": "hangup"}]
    name, tier, manager = customer
    variables = {"CUSTOMER_NAME": name}
    if order is not None:
        variables.update(LAST_ORDER=str(order[0]), LAST_ORDER_DATE=str(order[1]))
    if tier == "vip" and manager:
        variables.update(PRIORITY="vip", MANAGER=str(manager))
        return [{"action": "answer"},
                {"action": "set", "vars": variables},
                {"action": "log", "text": f"VIP {name}, manager {manager}"},
                {"action": "play", "files": ["crm-lookup/vip-welcome"]},
                {"action": "transfer", "target": str(manager), "timeout": 20}]
    variables["PRIORITY"] = "normal"
    actions: list[dict[str, Any]] = [
        {"action": "answer"},
        {"action": "set", "vars": variables},
        {"action": "log", "text": f"customer {name}"},
        {"action": "play", "files": ["crm-lookup/welcome-back"]}]
    if order is not None and re.fullmatch(r"[0-9]{1,32}", str(order[0])):
        actions += [{"action": "play", "files": ["crm-lookup/last-order-is"]},
                    {"action": "say", "kind": "digits", "value": str(order[0])}]
    return actions + [{"action": "hangup"}]


def on_dial(event: dict[str, Any]) -> list[dict[str, Any]]:
    # The manager's phone was busy, did not answer, or is not allowed: apologise, keep the status.
    status = re.sub(r"[^a-z]", "", str(event.get("dial_status", ""))) or "failed"
    return [{"action": "set", "vars": {"DIAL_STATUS": status}},
            {"action": "log", "text": f"manager did not answer: {status}"},
            {"action": "play", "files": ["sorry"]},
            {"action": "hangup"}]


def on_hangup(event: dict[str, Any]) -> list[dict[str, Any]]:
    # Where a CRM would store the call: the variables set on `incoming` come back in the event.
    variables = event.get("vars", {})
    who = variables.get("CUSTOMER_NAME") or "unknown caller"
    return [{"action": "log", "text": f"call ended: {who}, priority {variables.get('PRIORITY', '-')}"}]


def main() -> None:
    event = json.loads(sys.stdin.readline() or "{}")
    name = event.get("event")
    if name in ("incoming", "redirect"):
        actions = on_incoming(event)
    elif name == "dial":
        actions = on_dial(event)
    elif name == "hangup":
        actions = on_hangup(event)
    else:  # this script starts no gather or record, so no other event is expected
        actions = [{"action": "log", "text": "crm-lookup: unexpected event"}, {"action": "hangup"}]
    json.dump(actions, sys.stdout)
    print()


if __name__ == "__main__":
    main()
