"""Shared helpers for the ACD model tests: specs from short strings, stepping time."""

from __future__ import annotations

import random
from typing import Any, TypeVar

from pbxcore.acd.model import Acd, Decision, Journal, Offer
from pbxcore.acd.spec import Member, QueueSpec

T = TypeVar("T")


def spec(name: str = "q", members: tuple[str, ...] = ("1001", "1002"), **kw: Any) -> QueueSpec:
    """A QueueSpec; members as in pbx.toml ("1004:2" = tier 2)."""
    ms = []
    for m in members:
        ext, _, tier = m.partition(":")
        ms.append(Member(ext, int(tier) if tier else 1))
    kw.setdefault("retry", 0.0)
    return QueueSpec(name, members=tuple(ms), **kw)


def model(*specs: QueueSpec, login: bool = True, seed: int = 0) -> Acd:
    """A model at t=0 with every member logged in (by default)."""
    acd = Acd(specs, 0.0, rng=random.Random(seed))
    if login:
        for ext in sorted({m.extension for s in specs for m in s.members}):
            acd.login(ext, 0.0)
    return acd


def of(ds: list[Decision], cls: type[T]) -> list[T]:
    return [d for d in ds if isinstance(d, cls)]


def offered(ds: list[Decision]) -> list[tuple[str, tuple[str, ...]]]:
    """(call_id, agents) of every Offer in ds."""
    return [(o.call_id, o.agents) for o in of(ds, Offer)]


def rows(ds: list[Decision]) -> list[tuple[str, str | None, str | None, tuple[str, ...]]]:
    """(event, call_id, agent, data) of every Journal in ds."""
    return [(j.event, j.call_id, j.agent, j.data) for j in of(ds, Journal)]


def run_until(acd: Acd, t: float) -> list[Decision]:
    """Tick at every deadline up to and including t, then at t."""
    out: list[Decision] = []
    while (d := acd.next_deadline()) is not None and d <= t:
        out += acd.tick(d)
    out += acd.tick(t)
    return out
