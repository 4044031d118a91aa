"""Which digest answers were already used: nonce-count tracking (RFC 7616 §3.4.5, §3.5), sans-IO.

A stateless nonce (see `digest.DigestServer`) proves who issued it and when, not whether its
answer was seen before: without this book one sniffed INVITE is good for the nonce's whole life.
The book remembers, per nonce, the highest nonce-count accepted so far:

* qop=auth answers carry `nc`; each must be greater than the last one accepted with that nonce,
  so a client may reuse a nonce for many requests (baresip, SIPp re-REGISTER that way) but no
  request can be accepted twice;
* answers without qop (RFC 2069: pyVoIP, svcrack) have no nc, so the nonce is single-use: the
  first accepted answer consumes it.  pyVoIP asks for a fresh challenge before every request, so
  it never notices.

A refused reuse is answered with `stale=TRUE` by the caller, so an honest client simply retries
with a fresh nonce.  UDP retransmissions of one request never get here: the transaction layer
absorbs them before authentication (RFC 3261 §17.2.3).

Memory is bounded: only *accepted* answers (right password, our nonce) create an entry, entries
leave when their nonce is older than the ttl, and past `max_entries` the oldest entry is evicted.
Eviction must not make a used nonce usable again, so the book keeps a floor: an unseen nonce
issued at or before the newest issue time ever evicted counts as used (its client gets
`stale=TRUE` and one extra round trip).
"""

from __future__ import annotations

from collections import OrderedDict

CONSUMED = -1
"""Stored nc of a nonce used by an answer without qop: nothing after it is accepted."""


class NonceBook:
    """Accepted (nonce, nonce-count) pairs, bounded in time and size."""

    def __init__(self, ttl: float, max_entries: int = 65536) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # nonce → (issued, nc)
        self._floor = float("-inf")

    def __len__(self) -> int:
        return len(self._seen)

    def accept(self, nonce: str, issued: float, nc: int | None, now: float) -> bool:
        """Record an answer with this nonce and nc (None: no qop); False if it is a reuse."""
        self._expire(now)
        entry = self._seen.get(nonce)
        if entry is None:
            if issued <= self._floor:
                return False  # might have been used before it was evicted
            self._seen[nonce] = (issued, CONSUMED if nc is None else nc)
            while len(self._seen) > self.max_entries:
                _, (old_issued, _) = self._seen.popitem(last=False)
                self._floor = max(self._floor, old_issued)
            return True
        issued_at, last = entry
        if nc is None or last == CONSUMED or nc <= last:
            return False
        self._seen[nonce] = (issued_at, nc)
        return True

    def _expire(self, now: float) -> None:
        # Entries arrive roughly in issue order; dropping from the front while expired keeps
        # the cost amortised O(1).  A later-expiring entry in front only delays the sweep.
        while self._seen:
            nonce, (issued, _) = next(iter(self._seen.items()))
            if now - issued <= self.ttl:
                return
            del self._seen[nonce]
