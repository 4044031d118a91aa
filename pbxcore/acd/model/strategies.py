"""Which available agent(s) a caller is offered to: the six strategies of `spec.STRATEGIES`.

The dispatcher first keeps the eligible members (available, logged in and not paused in the
queue, registered, not on a direct call) whose tier is at most the caller's level, then only
the lowest tier among them (spec.py's tier rules); `choose` picks among those.  Ties go to the
member listed first in the config.

* ringall: every candidate at once.
* longest-idle: the one idle longest since its last queue call ended (from any queue) or since
  it logged in.
* round-robin: with memory (Asterisk's rrmemory): the first candidate listed after the member
  offered last in this queue, wrapping around.
* fewest-calls: the fewest calls answered from this queue since it logged in to the queue or
  since the last counter reset (midnight), whichever is later.
* linear: the first candidate in config order, always from the top.
* random: uniformly, from the injected `random.Random`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pbxcore.acd.spec import Strategy


@dataclass(frozen=True)
class Candidate:
    """An eligible member as the strategies see it."""

    extension: str
    index: int  # position in the queue's member list (config order)
    idle_since: float
    calls: int  # answered from this queue (fewest-calls)


def choose(strategy: Strategy, candidates: list[Candidate], last_offered: int | None,
           rng: random.Random) -> tuple[str, ...]:
    """The agents to ring; `candidates` is non-empty and in config order; `last_offered` is
    the member index round-robin offered last in this queue (None: start at the top)."""
    if strategy == "ringall":
        return tuple(c.extension for c in candidates)
    if strategy == "longest-idle":
        pick = min(candidates, key=lambda c: (c.idle_since, c.index))
    elif strategy == "round-robin":
        after = [c for c in candidates if last_offered is not None and c.index > last_offered]
        pick = after[0] if after else candidates[0]
    elif strategy == "fewest-calls":
        pick = min(candidates, key=lambda c: (c.calls, c.index))
    elif strategy == "linear":
        pick = candidates[0]
    else:
        pick = rng.choice(candidates)
    return (pick.extension,)
