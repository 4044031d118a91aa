"""The estimated wait announced to a caller: position-aware, from the agents serving the queue.

Formula (quoted in docs/architecture.md).  Let

* ``T`` be the queue's recent talk time: an exponentially weighted mean of its calls' talk time
  (weight ``ALPHA`` = 0.3 for the newest call; the first call replaces the prior
  ``PRIOR_TALK`` = 120 s),
* ``w`` the queue's wrap-up, and ``A = T + w`` the handle time of one call,
* ``n`` the members serving the queue: logged in to it, not paused there, phone registered,
* ``r_1 <= ... <= r_n`` the seconds until each of them is expected to be free: 0 when
  available or ringing; ``max(0, T - talked) + w`` when talking on a queue call answered
  ``talked`` seconds ago; the wrap-up left when in wrap-up; ``A`` when on a direct call.

Each agent then frees at ``r_i``, ``r_i + A``, ``r_i + 2A``, ...  The caller at position ``p``
(1 = next) is served at the p-th of those instants:

    wait(p) = floor((p - 1) / n) * A + r_(((p - 1) mod n) + 1)

and ``None`` (nothing is promised) when ``n = 0``.  Unlike Asterisk's queue-wide moving average
of hold time, the figure grows with the caller's position, shrinks when more agents log in, and
counts the calls already in progress.  An agent serving several queues is counted in each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

PRIOR_TALK: Final = 120.0  # seconds of talk time assumed before the queue's first call
ALPHA: Final = 0.3  # weight of the newest call in the moving average


@dataclass
class TalkTime:
    """The recent talk time of one queue's calls (exponentially weighted)."""

    mean: float = PRIOR_TALK
    samples: int = 0

    def add(self, talk: float) -> None:
        self.mean = talk if self.samples == 0 else self.mean + ALPHA * (talk - self.mean)
        self.samples += 1


def estimated_wait(position: int, handle_time: float, free_in: Sequence[float]) -> float | None:
    """wait(p) of the module docstring; `free_in` is r_1..r_n in any order."""
    n = len(free_in)
    if n == 0:
        return None
    r = sorted(free_in)
    rounds, k = divmod(max(1, position) - 1, n)
    return rounds * handle_time + r[k]


def free_in(talk: float, wrapup: float, talked: float) -> float:
    """r for an agent talking for `talked` seconds on a queue call."""
    return max(0.0, talk - talked) + wrapup


def minutes(seconds: float) -> int:
    """Whole minutes to announce (rounded up, at least 1): what the prompts say."""
    return max(1, math.ceil(seconds / 60))
