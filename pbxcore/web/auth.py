"""Passwords, sessions and CSRF tokens of the web server.

Passwords: argon2id (argon2-cffi) hashes in `[[web.users]] password_hash`; `pbx web passwd`
makes them.  Sessions: a signed, timestamped cookie (itsdangerous) holding the user's name and a
random session id; it is checked against the *current* config on every request, so removing a
user or changing their role takes effect at the next reload.  CSRF: the token is an HMAC of the
session id under the secret, sent by the page in an X-CSRF-Token header on every POST; a
cross-site form can neither read it nor set the header.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from pbxcore.config_web import WebConfig, WebUser

COOKIE = "pbx_session"
_hasher = PasswordHasher()
# Verifying an unknown user's password against this keeps the answer time alike for both.
_DUMMY = _hasher.hash(secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(web: WebConfig, name: str, password: str) -> WebUser | None:
    user = web.user(name)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def load_secret(configured: str, var: Path) -> str:
    """[web] secret, or the one kept in var/web.secret (made at the first start, mode 0600)."""
    if configured:
        return configured
    path = var / "web.secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    var.mkdir(parents=True, exist_ok=True)
    made = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(made + "\n")
    return made


@dataclass(frozen=True)
class Session:
    name: str
    sid: str


class Sessions:
    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self._signer = URLSafeTimedSerializer(secret, salt="pbxcore-web-session")

    def issue(self, name: str) -> str:
        return self._signer.dumps({"n": name, "s": secrets.token_urlsafe(16)})

    def read(self, cookie: str | None, max_age: float) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=int(max_age))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "ns"):
            return None
        return Session(data["n"], data["s"])

    def csrf(self, session: Session) -> str:
        return hmac.new(self.secret, b"csrf:" + session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf(session), token)
