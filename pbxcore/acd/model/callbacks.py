"""Callbacks that keep the caller's place: a waiting entry with no live caller.

A caller who presses the queue's callback key leaves the line (Leave `callback`, CALLBACK) and a
*virtual caller* takes its place at once: the same priority, arrival number and join time, so it
is offered to an agent exactly when the caller would have been.  It never times out and hears no
announcements (nobody is on the line).  When an agent answers its offer the model returns the
usual `Connect` with a CALLBACKATTEMPT row instead of CONNECT: the service then dials the
customer (`callback_connected` when they answer: CALLBACKCONNECT, and the call ends as any queue
call; `callback_unanswered` when they do not: the agent is free again and the virtual caller goes
back to its place after an exponential back-off, or CALLBACKFAILED once `callback_retries` retries
are spent).  `restore_callback` re-enters one after a restart (the service keeps them in the
store), in the order they were requested.
"""

from __future__ import annotations

from pbxcore.acd.model import journal
from pbxcore.acd.model.decisions import Decision, Journal
from pbxcore.acd.model.members import Members
from pbxcore.acd.model.queue import Caller
from pbxcore.acd.model.state import QueueState


class Callbacks(Members):
    """`Members` plus the callback inputs of `Acd`."""

    def request_callback(self, call_id: str, now: float, callback_id: str,
                         number: str) -> list[Decision]:
        """The waiting caller `call_id` asked to be called back on `number`: it leaves (Leave
        `callback`, CALLBACK) and the virtual caller `callback_id` keeps its place
        (CALLBACKREQUEST, data: number, the caller's call id, its position now).  [] when the
        caller is not waiting or `callback_id` is taken."""
        c = self._callers.get(call_id)
        if c is None or callback_id in self._callers or callback_id in self._connected:
            return []
        q = self._queues[c.queue]
        out: list[Decision] = []
        position = q.line.position(c)
        self._remove(c, now, out, "callback")
        v = Caller(callback_id, c.queue, c.priority, c.seq, c.joined_at, c.position, None,
                   False, level=c.level, callback=number)
        self._enter(q, v, now)
        out.append(Journal(c.queue, "CALLBACKREQUEST", callback_id, None,
                           (number, call_id, str(position))))
        return self._finish(now, out)

    def restore_callback(self, callback_id: str, queue: str, now: float, *, number: str,
                         priority: int = 0, waited: float = 0.0, attempts: int = 0,
                         position: int = 0) -> list[Decision]:
        """Re-enter a pending callback after a restart: call in the order they were requested
        (FIFO within a priority follows the order of these calls).  `waited`: seconds since
        it was requested, so the longest wait and the service level stay honest.  AcdError for
        an unknown queue; [] when `callback_id` is already in the model."""
        q = self._queue(queue)
        if callback_id in self._callers or callback_id in self._connected:
            return []
        self._seq += 1
        v = Caller(callback_id, queue, priority, self._seq, now - max(waited, 0.0), position,
                   None, False, callback=number, attempts=attempts)
        self._enter(q, v, now)
        return self._finish(now, [])

    def callback_connected(self, callback_id: str, now: float) -> list[Decision]:
        """The customer answered the callback: CALLBACKCONNECT (data: number, attempt, seconds
        since the request); it counts as answered for the service level.  The call then ends
        with `call_ended` like any queue call."""
        v = self._dialling.pop(callback_id, None)
        conn = self._connected.get(callback_id)
        if v is None or conn is None:
            return []
        q = self._queues.get(v.queue)
        if q is not None:
            q.answered += 1
            q.answered_in_sl += conn.hold <= q.spec.service_level
            self._dirty.add(v.queue)
        out: list[Decision] = [Journal(v.queue, "CALLBACKCONNECT", callback_id, conn.agent, (
            v.callback or "", str(v.attempts), journal.secs(now - v.joined_at)))]
        return self._finish(now, out)

    def callback_unanswered(self, callback_id: str, now: float,
                            status: str) -> list[Decision]:
        """The customer was not reached (`status`: busy, noanswer, failed, or the agent left):
        the agent is free again at once (no wrap-up: there was no conversation) and the virtual
        caller goes back to its place, offered again after `callback_delay(attempts)` seconds;
        once `callback_retries` retries are spent, CALLBACKFAILED (data: number, attempts,
        status) and it is gone."""
        v = self._dialling.pop(callback_id, None)
        conn = self._connected.pop(callback_id, None)
        if v is None or conn is None:
            return []
        self._end_call(conn, now, wrapup=False)
        q = self._queues.get(v.queue)
        out: list[Decision] = []
        if q is None or v.attempts > q.spec.callback_retries:
            out.append(Journal(v.queue, "CALLBACKFAILED", callback_id, conn.agent,
                               (v.callback or "", str(v.attempts), status)))
            return self._finish(now, out)
        v.offer_id = None
        self._enter(q, v, now)
        v.retry_at = now + q.spec.callback_delay(v.attempts)
        self._timers.push(v.retry_at, "retry", v.call_id)
        return self._finish(now, out)

    def cancel_callback(self, callback_id: str, now: float, why: str) -> list[Decision]:
        """Drop a waiting callback (its queue is gone, an operator cancelled it):
        CALLBACKFAILED with `why`.  [] when it is not waiting."""
        v = self._callers.get(callback_id)
        if v is None or v.callback is None:
            return []
        out: list[Decision] = []
        self._drop_callback(v, now, out, why)
        return self._finish(now, out)

    def callbacks(self) -> list[tuple[str, str, str, int]]:
        """Every callback in the model, (queue, callback id, number, attempts), waiting ones in
        service order, then those whose customer is being dialled."""
        out = [(name, c.call_id, c.callback or "", c.attempts) for name, q in self._queues.items()
               for c in q.line if c.callback is not None]
        out += [(v.queue, v.call_id, v.callback or "", v.attempts)
                for v in self._dialling.values()]
        return out

    def _drop_callback(self, v: Caller, now: float, out: list[Decision], why: str) -> None:
        q = self._queues[v.queue]
        if v.offer_id is not None:
            self._withdraw(self._offers[v.offer_id], now, out)
        q.line.remove(v)
        del self._callers[v.call_id]
        self._dirty.add(v.queue)
        out.append(Journal(v.queue, "CALLBACKFAILED", v.call_id, None,
                           (v.callback or "", str(v.attempts), why)))

    def _enter(self, q: QueueState, v: Caller, now: float) -> None:
        q.line.add(v)
        self._callers[v.call_id] = v
        self._schedule_caller(q, v, now)
        self._dirty.add(q.spec.name)
