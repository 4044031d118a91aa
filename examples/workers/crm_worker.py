#!/usr/bin/env python3
"""A CRM-style routing worker for pbxcore (protocol v1, worker transport).

Start-up once: open the customer database (SQLite here; any DB client works the same way).
Then, for every event line on stdin, look the caller up and print one line of actions.

    [[routes]]
    match = "^200$"
    worker = "examples/workers/crm_worker.py"
    workers = 2
    env = { CRM_DB = "/var/lib/crm/customers.db" }

Known callers get their customer data as call variables and a greeting before the menu;
unknown callers go straight to the menu.  Menu choices and call ends are stored as contacts.
Without CRM_DB a small demo database is created in memory.  Standard library only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from typing import Any

Actions = list[dict[str, Any]]


def open_crm(path: str | None) -> sqlite3.Connection:
    db = sqlite3.connect(path or ":memory:")
    db.execute("CREATE TABLE IF NOT EXISTS customers (phone TEXT PRIMARY KEY, name TEXT, "
               "tier TEXT, open_tickets INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS contacts (call_id TEXT, phone TEXT, event TEXT, "
               "detail TEXT)")
    if path is None:  # demo data
        db.executemany("INSERT OR IGNORE INTO customers VALUES (?, ?, ?, ?)", [
            ("1001", "Alice", "gold", 1), ("1002", "Bob", "standard", 0)])
    db.commit()
    return db


def lookup(db: sqlite3.Connection, phone: str) -> tuple[str, str, int] | None:
    row = db.execute("SELECT name, tier, open_tickets FROM customers WHERE phone = ?",
                     (phone,)).fetchone()
    return (row[0], row[1], row[2]) if row else None


def handle(db: sqlite3.Connection, event: dict[str, Any]) -> Actions:
    name, caller = event.get("event"), event.get("caller", "")
    if name == "incoming":
        customer = lookup(db, caller)
        if customer is None:
            return [{"action": "answer"}, {"action": "set", "vars": {"tier": "unknown"}},
                    {"action": "gather", "max": 1, "timeout": 5, "prompt": "menu"}]
        cname, tier, tickets = customer
        return [{"action": "answer"},
                {"action": "set", "vars": {"customer": cname, "tier": tier,
                                           "open_tickets": str(tickets)}},
                {"action": "log", "text": f"known caller {cname} ({tier})"},
                {"action": "play", "files": ["welcome"]},
                {"action": "gather", "max": 1, "timeout": 5, "prompt": "menu"}]
    if name == "gather":
        db.execute("INSERT INTO contacts VALUES (?, ?, ?, ?)",
                   (event.get("call_id"), caller, "menu", event.get("digits", "")))
        db.commit()
        if event.get("result") != "ok":
            return [{"action": "play", "files": ["invalid"]}, {"action": "hangup"}]
        return [{"action": "say", "kind": "digits", "value": event["digits"]},
                {"action": "play", "files": ["goodbye"]}, {"action": "hangup"}]
    if name == "hangup":  # the call is over: only log and set are acted on
        db.execute("INSERT INTO contacts VALUES (?, ?, ?, ?)",
                   (event.get("call_id"), caller, "hangup", event.get("result", "")))
        db.commit()
        return [{"action": "log", "text": f"crm: contact stored for {caller or 'anonymous'}"}]
    return []  # events this worker does not know: nothing to do


def main() -> None:
    db = open_crm(os.environ.get("CRM_DB"))
    print(f"crm_worker {os.getpid()} ready", file=sys.stderr, flush=True)
    for line in sys.stdin:
        try:
            actions = handle(db, json.loads(line))
        except Exception as exc:  # one bad event must not take the worker down
            print(f"crm_worker: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            actions = [{"action": "log", "text": "crm lookup failed"}, {"action": "hangup"}]
        print(json.dumps(actions), flush=True)  # exactly one line per event


if __name__ == "__main__":
    main()
