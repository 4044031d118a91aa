"""Who is calling: digest authentication of users' REGISTERs and INVITEs (RFC 3261 §22.4).

`SwitchAuth` joins the pure pieces — `DigestServer` (challenge, verify, replay and Request-URI
binding) and `AuthThrottle` (back-off, then 403, per source and per user) — and adds what they
must not do: logging.  Every refused Authorization is logged with the method, the claimed user
(escaped with `ascii()`: it is caller text), the source and the reason; guesses also with the
failure counters, so an operator sees a brute force in the log as it happens.

The switch asks `check()` and either gets the authenticated extension or a `Refusal` to send
(after `delay` seconds: the back-off).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pbxcore.sip.auth_throttle import AuthThrottle
from pbxcore.sip.digest import AuthResult, DigestServer
from pbxcore.sip.message import Request
from pbxcore.sip.peer import Peer

log = logging.getLogger("pbxcore.switch")


@dataclass(frozen=True)
class Refusal:
    """The answer to a request that did not authenticate."""

    status: int  # 401 challenge, 400 broken Authorization, 403 blocked
    headers: list[tuple[str, str]] = field(default_factory=list)
    reason: str | None = None
    delay: float = 0.0  # seconds to hold the answer back


class SwitchAuth:
    """Digest authentication with replay protection and failed-attempt limits."""

    def __init__(self, realm: str, algorithms: Sequence[str], secret: bytes | None = None) -> None:
        self.digest = DigestServer(realm, secret or secrets.token_bytes(32), algorithms=algorithms)
        self.throttle = AuthThrottle()

    def check(self, request: Request, source: Peer, users: Mapping[str, str],
              now: float) -> str | Refusal:
        """The authenticated extension, or what to answer instead."""
        result = self.digest.verify(request.headers.get("Authorization"), request.method,
                                    request.uri, users, now)
        refused = self.throttle.blocked(source.host, result.user, now)
        if refused is not None:
            log.warning("authentication refused: %s user %s from %s:%s: %s", request.method,
                        ascii(result.user), source.host, source.port, refused)
            return Refusal(403, reason="Forbidden (too many failed authentications)")
        if result.ok and result.user is not None:
            self.throttle.succeeded(source.host, result.user, now)
            return result.user
        delay = self._log_failure(request, source, result, now)
        if result.malformed:
            return Refusal(400, reason="Bad Request (malformed Authorization)", delay=delay)
        challenge = self.digest.challenge(now, stale=result.stale)
        return Refusal(401, [("WWW-Authenticate", c) for c in challenge], delay=delay)

    def _log_failure(self, request: Request, source: Peer, result: AuthResult,
                     now: float) -> float:
        """Log a refused Authorization; count it if it was a guess.  Returns the back-off."""
        if result.reason == "no credentials":
            return 0.0  # the first step of every exchange, not a failure
        who = f"{request.method} user {ascii(result.user)} from {source.host}:{source.port}"
        if not result.failure:
            # stale: right password, unusable nonce; the client retries on its own.  An expired
            # nonce is routine (phones keep one across re-REGISTERs), a reused one is not.
            level = logging.INFO if result.reason == "stale nonce" else logging.WARNING
            log.log(level, "authentication failed: %s: %s (re-challenged, stale)", who,
                    result.reason)
            return 0.0
        verdict = self.throttle.failed(source.host, result.user, now)
        log.warning("authentication failed: %s: %s (failures in %.0f s: source %d, user %d)",
                    who, ascii(result.reason)[1:-1], self.throttle.window,
                    verdict.source_failures, verdict.user_failures)
        for what in verdict.blocked:
            log.warning("authentication: blocking %s (403)", what)
        return verdict.delay
