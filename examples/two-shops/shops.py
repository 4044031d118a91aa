#!/usr/bin/python3
"""Two shops on one switch: the dialled number (PBX_CALLED) picks the shop.

One script serves both routes (see pbx.toml). Each shop has its own prompts (greeting with a
small menu, opening hours), and `set SHOP=... SHOP_NAME=...` on the first event tells everyone
after the script which shop the caller wanted: the agent who takes the call, later events
(PBX_VAR_SHOP) and the call record. Agents can sit in one queue for both shops and still greet
the caller with the right name.

Menu: 1 = order (until queues land: "please hold", SHOP and ORDER=yes are set, hang up; then
`queue orders` takes over), 2 = opening hours and the menu again; a wrong key or none: the
menu once more, then goodbye. Standard library only.
"""

import os

# Dialled number -> (SHOP variable, name for agents, prompt prefix under sounds/<lang>/two-shops/).
SHOPS = {
    "7001": ("flowers", "Bloom & Petal", "two-shops/flowers"),
    "7002": ("books", "Paper Lantern Books", "two-shops/books"),
}


def env(name: str) -> str:
    return os.environ.get(name, "")


def menu(prefix: str) -> str:
    return f"gather max=1 timeout=6 prompt={prefix}-welcome"


def shop() -> tuple[str, str, str] | None:
    # The variable set on `incoming` wins over PBX_CALLED on later events: the shop a caller
    # reached does not change mid-call even if the call was redirected from another number.
    for entry in SHOPS.values():
        if entry[0] == env("PBX_VAR_SHOP"):
            return entry
    return SHOPS.get(env("PBX_CALLED"))


def on_incoming() -> list[str]:
    found = SHOPS.get(env("PBX_CALLED"))
    if found is None:
        called = "".join(c for c in env("PBX_CALLED") if c.isdigit()) or "none"
        return [f"log two-shops: no shop for number {called}", "play sorry", "hangup"]
    name, label, prefix = found
    return ["answer", f'set SHOP={name} SHOP_NAME="{label}" TRIES=1', menu(prefix)]


def on_gather() -> list[str]:
    found = shop()
    if found is None:
        return ["log two-shops: gather without a shop", "hangup"]
    name, _, prefix = found
    key = env("PBX_DIGITS") if env("PBX_RESULT") == "ok" else ""
    if key == "1":
        return ["set ORDER=yes", "play two-shops/please-hold", f"log {name}: caller wants to order",
                "hangup"]
    if key == "2":
        return [f"play {prefix}-hours", "set TRIES=1", menu(prefix)]
    if env("PBX_VAR_TRIES") == "1":
        return ["play invalid", "set TRIES=2", menu(prefix)]
    return ["play goodbye", "hangup"]


def on_hangup() -> list[str]:
    found = shop()
    return [f"log call ended: shop {found[0] if found else 'none'}, order {env('PBX_VAR_ORDER') == 'yes'}"]


def main() -> None:
    handlers = {"incoming": on_incoming, "redirect": on_incoming, "gather": on_gather,
                "hangup": on_hangup}
    handler = handlers.get(env("PBX_EVENT"))
    print("\n".join(handler() if handler else ["log two-shops: unexpected event", "hangup"]))


if __name__ == "__main__":
    main()
