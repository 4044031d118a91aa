#!/usr/bin/python3
"""A call centre in three tiers: IVR -> operators queue -> consultant queues by product line.

Two shops share one switch and one team of operators; the dialled number (PBX_CALLED) picks the
shop (see SHOPS), and the shop is whispered to the operator before the caller is put through
("call for Flowers"), so the operator greets the caller with the right name.

1. IVR.  The caller's number is looked up in the CRM (crm.json next to this file, or CRM_FILE
   from the route's env): a known customer's CRM id, name and tier are `set` on the call, so
   they reach the agent's phone as X-Pbx-Var-CRM_ID / -CUSTOMER / -TIER headers (the screen pop)
   and every later event.  VIPs hear that they are served first.  Menu: 1 = operators,
   2 = a product consultant (then the shop's product lines).  A wrong key or none is forgiven
   once; a caller who still presses nothing (an old phone, a caller who does not understand)
   goes to an operator: a human sorts it out.
2. Operators (`queue operators`): VIPs with priority, so they are answered before earlier
   callers.  2 leaves for the consultants (exit_key).  Timeout: "press 1 to wait for a
   consultant instead", otherwise "please call back later".  Empty (nobody logged in) and
   full: please call back later.
3. Consultants (`queue consult-LINE`): 0 leaves for the operators.  Empty or full: the
   operators take the call; timeout: please call back later.

A caller bounced between queues by keys or empty queues goes at most MAX_VISITS times into a
queue, then is asked to call back.  Python 3 standard library only.
"""

import json
import os
import re
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Dialled number -> (SHOP variable, name for the agents, prompt prefix under call-centre/).
SHOPS = {
    "7101": ("flowers", "Bloom & Petal"),
    "7102": ("books", "Paper Lantern Books"),
}
# Product lines of each shop: menu key -> line; each line is a queue `consult-LINE`.
PRODUCTS = {
    "flowers": {"1": "bouquets", "2": "plants"},
    "books": {"1": "fiction", "2": "children"},
}
OPERATORS = "operators"
VIP_PRIORITY = 10
MAX_VISITS = 3


def env(name: str) -> str:
    return os.environ.get(name, "")


def digits_of(text: str) -> str:
    """A caller-controlled number as digits only (for lookups and log lines)."""
    return re.sub(r"[^0-9]", "", text)[:32]


def lookup(phone: str) -> dict[str, str] | None:
    """The CRM's record of this number, or None (unknown, or the CRM cannot be read)."""
    path = Path(env("CRM_FILE") or HERE / "crm.json")
    try:
        customers = json.loads(path.read_text(encoding="utf-8"))["customers"]
    except (OSError, ValueError, KeyError) as exc:  # the call is served anyway, as unknown
        print(f"crm lookup failed: {exc!r}", file=sys.stderr)
        return None
    found = customers.get(phone)
    return found if isinstance(found, dict) else None


def quoted(**values: str) -> str:
    return " ".join(f"{name}={shlex.quote(value)}" for name, value in values.items())


def shop() -> str:
    return env("PBX_VAR_SHOP") or "flowers"


def priority() -> str:
    return f" priority={VIP_PRIORITY}" if env("PBX_VAR_TIER") == "vip" else ""


def whisper() -> str:
    return f" whisper=call-centre/whisper-{shop()}"


def visits() -> int:
    value = env("PBX_VAR_VISITS")
    return int(value) if value.isdigit() else 0


def call_back_later(why: str) -> list[str]:
    return [f"log {why}: asked to call back later", "play call-centre/call-back-later", "hangup"]


def main_menu(tries: int) -> list[str]:
    return [f"set STEP=menu TRIES={tries}", "gather max=1 timeout=6 prompt=call-centre/menu"]


def products_menu(tries: int = 1) -> list[str]:
    return [f"set STEP=products TRIES={tries}",
            f"gather max=1 timeout=6 prompt=call-centre/{shop()}-products"]


def to_operators() -> list[str]:
    if visits() >= MAX_VISITS:
        return call_back_later(f"{visits()} queue visits")
    return [f"set STEP=operators VISITS={visits() + 1}", "play call-centre/operators-hold",
            f"queue {OPERATORS}{priority()} exit_key=2{whisper()}"]


def to_consultants(line: str) -> list[str]:
    if visits() >= MAX_VISITS:
        return call_back_later(f"{visits()} queue visits")
    return [f"set STEP=consultants LINE={line} VISITS={visits() + 1}",
            "play call-centre/consultants-hold",
            f"queue consult-{line}{priority()} exit_key=0{whisper()}"]


def on_incoming() -> list[str]:
    found = SHOPS.get(env("PBX_CALLED"))
    if found is None:
        called = digits_of(env("PBX_CALLED")) or "none"
        return [f"log call-centre: no shop for number {called}", "play sorry", "hangup"]
    name, label = found
    customer = lookup(digits_of(env("PBX_CALLER")))
    tier = "new"
    known = {}
    if customer is not None:
        tier = "vip" if customer.get("tier") == "vip" else "normal"
        known = {"CRM_ID": str(customer.get("id", "")), "CUSTOMER": str(customer.get("name", ""))}
    actions = ["answer", f"set {quoted(SHOP=name, SHOP_NAME=label, TIER=tier, **known)}",
               f"play call-centre/{name}-welcome"]
    if tier == "vip":
        actions.append("play call-centre/vip-welcome")
    return actions + main_menu(1)


def on_gather() -> list[str]:
    step, key = env("PBX_VAR_STEP"), env("PBX_DIGITS") if env("PBX_RESULT") == "ok" else ""
    again = env("PBX_VAR_TRIES") == "1"
    sorry = ["play invalid"] if key else []
    if step == "menu":
        if key == "1":
            return to_operators()
        if key == "2":
            return products_menu()
        if again:
            return sorry + main_menu(2)
        return ["log no choice in the menu: to an operator", *to_operators()]
    if step == "products":
        line = PRODUCTS.get(shop(), {}).get(key)
        if line is not None:
            return to_consultants(line)
        if again:
            return sorry + products_menu(2)
        return ["log no product line chosen: to an operator", *to_operators()]
    if step == "busy":
        if key == "1":
            return products_menu()
        return call_back_later("operators busy")
    return ["log call-centre: gather in an unknown step", "hangup"]


def on_queue() -> list[str]:
    queue, result = env("PBX_QUEUE"), env("PBX_RESULT")
    note = f"log left {queue} after {env('PBX_QUEUE_WAIT') or '0'} s: {result}"
    if queue == OPERATORS:
        if result == "timeout":
            return [note, "set STEP=busy TRIES=1",
                    "gather max=1 timeout=6 prompt=call-centre/operators-busy"]
        if result == "exit_key":
            return [note, *products_menu()]
        if result == "empty":
            return [note, "play call-centre/nobody-available", "hangup"]
        if result == "full":
            return [note, "play call-centre/queue-full", "hangup"]
        return [note, *call_back_later(f"operators {result}")]
    if result in ("exit_key", "empty", "full"):  # a consultant queue: the operators take it
        return [note, *to_operators()]
    return [note, *call_back_later(f"{queue} {result}")]


def on_hangup() -> list[str]:
    agent = env("PBX_AGENT") or "none"
    where = env("PBX_QUEUE") or "no queue"
    return [f"log call ended: shop {env('PBX_VAR_SHOP') or 'none'}, tier "
            f"{env('PBX_VAR_TIER') or 'none'}, {where}, agent {agent}, by {env('PBX_RESULT')}"]


def main() -> None:
    handlers = {"incoming": on_incoming, "gather": on_gather, "queue": on_queue,
                "hangup": on_hangup}
    handler = handlers.get(env("PBX_EVENT"))
    print("\n".join(handler() if handler else ["log call-centre: unexpected event", "hangup"]))


if __name__ == "__main__":
    main()
