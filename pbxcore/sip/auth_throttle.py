"""Failed-authentication rate limits per source address and per user, sans-IO (`now` passed in).

A password guesser (sipvicious svcrack, a botnet) sends one REGISTER per guess; nothing in digest
itself slows it down.  This keeps two counters for every failed attempt: one for the source
address and one for the username claimed.  Each counts the failures of the last `window`
seconds (at most `limit` remembered, so a key costs O(limit) memory):

* the first `free` failures are answered at once (a user mistyping a password is not punished);
* after that each further 401 is held back: 1 s, 2 s, 4 s (the *back-off*, `delay`);
* at `limit` failures the key is blocked: every request it makes gets 403 for `block` seconds,
  doubled at each new block of the same key (up to `max_block`) and forgotten after a quiet
  `max_block`.

A per-user block would let anyone lock a user out by failing on purpose, so it does not apply to
the addresses that user last authenticated from (`succeeded`): the user's own phone keeps working
while the guesser, elsewhere, gets 403.  The source block applies to everyone at that address.

Memory is bounded: each table (sources, users — usernames are caller text) keeps at most
`max_keys` keys, least recently touched first out; known addresses are kept for real
(authenticated) users only, a few each.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass
class _Counter:
    failures: deque[float]
    blocked_until: float = float("-inf")
    strikes: int = 0  # blocks so far; each doubles the next block
    last_block_end: float = float("-inf")


@dataclass(frozen=True)
class Verdict:
    """What one failed attempt changed: counts for the logs, and what to do with the 401."""

    source_failures: int
    user_failures: int
    delay: float
    """Seconds to hold the challenge back (0: answer now)."""
    blocked: tuple[str, ...] = field(default=())
    """Keys this failure blocked, as text for the log: `source 10.0.0.9 for 60 s`."""


class AuthThrottle:
    """Counts failed authentications; says when to slow down and when to refuse."""

    def __init__(self, *, free: int = 3, limit: int = 10, window: float = 60.0,
                 block: float = 60.0, max_block: float = 960.0, max_delay: float = 4.0,
                 max_keys: int = 4096, known_per_user: int = 4) -> None:
        if not 0 <= free < limit:
            raise ValueError("need 0 <= free < limit")
        self.free, self.limit, self.window = free, limit, window
        self.block, self.max_block, self.max_delay = block, max_block, max_delay
        self.max_keys, self.known_per_user = max_keys, known_per_user
        self._sources: OrderedDict[str, _Counter] = OrderedDict()
        self._users: OrderedDict[str, _Counter] = OrderedDict()
        self._known: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()

    def blocked(self, source: str, user: str | None, now: float) -> str | None:
        """Why requests from `source` (claiming `user`) are refused now, or None."""
        counter = self._sources.get(source)
        if counter is not None and counter.blocked_until > now:
            return f"source blocked for {counter.blocked_until - now:.0f} s more"
        if user is None:
            return None
        counter = self._users.get(user)
        if (counter is not None and counter.blocked_until > now
                and source not in self._known.get(user, ())):
            return f"user blocked for {counter.blocked_until - now:.0f} s more"
        return None

    def failed(self, source: str, user: str | None, now: float) -> Verdict:
        """Count one failed attempt."""
        blocked: list[str] = []
        n_source = self._count(self._sources, source, now, f"source {source}", blocked)
        n_user = 0
        if user is not None:
            n_user = self._count(self._users, user, now, f"user {user!a}", blocked)
        worst = max(n_source, n_user)
        delay = 0.0
        if not blocked and worst > self.free:
            delay = min(2.0 ** (worst - self.free - 1), self.max_delay)
        return Verdict(n_source, n_user, delay, tuple(blocked))

    def succeeded(self, source: str, user: str, now: float) -> None:
        """`user` authenticated from `source`: a user block no longer applies to it."""
        hosts = self._known.pop(user, None) or OrderedDict()
        hosts.pop(source, None)
        hosts[source] = None
        while len(hosts) > self.known_per_user:
            hosts.popitem(last=False)
        self._known[user] = hosts
        while len(self._known) > self.max_keys:
            self._known.popitem(last=False)

    def _count(self, table: OrderedDict[str, _Counter], key: str, now: float, label: str,
               blocked: list[str]) -> int:
        counter = table.pop(key, None) or _Counter(deque(maxlen=self.limit))
        table[key] = counter  # most recently touched last
        while len(table) > self.max_keys:
            table.popitem(last=False)
        while counter.failures and now - counter.failures[0] > self.window:
            counter.failures.popleft()
        counter.failures.append(now)
        count = len(counter.failures)
        if count >= self.limit:
            if now - counter.last_block_end > self.max_block:
                counter.strikes = 0  # quiet long enough: start the back-off again
            counter.strikes += 1
            length = min(self.block * 2 ** (counter.strikes - 1), self.max_block)
            counter.blocked_until = counter.last_block_end = now + length
            counter.failures.clear()
            blocked.append(f"{label} for {length:.0f} s after {count} failures")
        return count
