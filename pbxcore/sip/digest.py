"""HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760), sans-IO.

Server side: `DigestServer` issues challenges whose nonce is stateless — issue time, a random
salt and an HMAC over both with a shared secret — so any node holding the secret verifies it and
nothing is stored per nonce.  A nonce older than `nonce_ttl` with a valid HMAC is "stale": the
client is re-challenged with `stale=TRUE` and retries without asking its user (RFC 7616 §3.3).
Replay inside the ttl (nc tracking) is not prevented: that would need per-nonce state.

What real peers send, all accepted (docs/peers.md §1c, sipvicious notes):
* qop=auth with cnonce and nc (RFC 7616);
* no qop at all, RFC 2069 (pyVoIP always, with `uri="sip:host;transport=UDP"`, not the R-URI);
* qop=auth without cnonce/nc but an RFC 2069 hash (sipvicious svcrack).
The digest `uri` is hashed as sent and not compared with the Request-URI.  An unknown user costs
the same hash work as a wrong password and gets the same answer, so timing and replies do not
reveal which extensions exist.  Nothing here raises on peer input: `verify` returns a result.

Client side: `authorization_for` answers one challenge (for registering to trunks).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_HASHES: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256"}
_DUMMY_PASSWORD = "\x00no such user\x00"


class DigestParseError(ValueError):
    """An authentication header that is not `scheme param=value, ...`."""


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """`Digest realm="a, b", nc=00000001` -> ("Digest", {"realm": "a, b", "nc": "00000001"}).

    Parameter names are lower-cased; quoted strings are unescaped (RFC 3261 §25.1 quoted-pair);
    spaces around `=` and `,` are tolerated.  Raises `DigestParseError`.
    """
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme or "=" in scheme or "," in scheme:
        raise DigestParseError("no authentication scheme")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and rest[i] not in "= \t,":
            i += 1
        name = rest[start:i].lower()
        while i < n and rest[i] in " \t":
            i += 1
        if not name or i >= n or rest[i] != "=":
            raise DigestParseError(f"parameter without value near {rest[start:start + 20]!r}")
        i += 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise DigestParseError("unterminated quoted string")
            i += 1
            params[name] = "".join(chars)
        else:
            start = i
            while i < n and rest[i] != ",":
                i += 1
            params[name] = rest[start:i].strip()
    return scheme, params


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8", "surrogateescape")).hexdigest()


def digest_response(
    algorithm: str,
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
) -> str:
    """The `response` value (RFC 7616 §3.4.1); `qop=None` is the RFC 2069 form."""
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


@dataclass(frozen=True)
class AuthResult:
    """The outcome of checking one Authorization header."""

    ok: bool
    """The credentials are right and the nonce is fresh."""
    user: str | None
    """The username the client claimed (None if the header could not be read)."""
    stale: bool
    """Right password, expired nonce: re-challenge with stale=TRUE."""
    reason: str
    """Why not ok, for logs; never tells an unknown user from a wrong password."""


class DigestServer:
    """Challenges and verifies Digest credentials for one realm."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        algorithms: Sequence[str] = ("MD5", "SHA-256"),
        nonce_ttl: float = 300.0,
        rand: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        unknown = [a for a in algorithms if a.upper() not in _HASHES]
        if unknown or not algorithms:
            raise ValueError(f"unsupported digest algorithms {unknown}")
        self.realm = realm
        self.algorithms = tuple(a.upper() for a in algorithms)
        self.nonce_ttl = nonce_ttl
        self._secret = secret
        self._rand = rand
        self._opaque = self._mac("opaque")[:16]

    def _mac(self, text: str) -> str:
        data = f"{self.realm}\x00{text}".encode("utf-8", "surrogateescape")
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()[:32]

    def make_nonce(self, now: float) -> str:
        """`<issued ms, hex>.<salt>.<hmac>`: verifiable by any node sharing the secret."""
        body = f"{int(now * 1000):x}.{self._rand()}"
        return f"{body}.{self._mac(body)}"

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate values, one per algorithm, all with the same nonce.

        The nonce is shared so that a client which reads only one of the values (pyVoIP keeps
        the last) and answers with another algorithm still verifies.
        """
        nonce = self.make_nonce(now)
        tail = ", stale=TRUE" if stale else ""
        return [
            f"Digest realm={_quote(self.realm)}, nonce={_quote(nonce)}, "
            f"opaque={_quote(self._opaque)}, algorithm={algorithm}, qop=\"auth\"{tail}"
            for algorithm in self.algorithms
        ]

    def _nonce_age(self, nonce: str, now: float) -> float | None:
        """Seconds since the nonce was issued, or None if it is not one of ours."""
        body, _, mac = nonce.rpartition(".")
        issued, _, _salt = body.partition(".")
        if not body or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        try:
            age = now - int(issued, 16) / 1000
        except ValueError:
            return None
        return age if age >= -1.0 else None  # from the future (beyond clock skew): forged

    def verify(
        self, authorization: str | None, method: str, users: Mapping[str, str], now: float
    ) -> AuthResult:
        """Check an Authorization (or Proxy-Authorization) value; never raises on peer input."""
        if authorization is None:
            return AuthResult(False, None, False, "no credentials")
        try:
            scheme, p = parse_auth_params(authorization)
        except DigestParseError as exc:
            return AuthResult(False, None, False, f"malformed credentials: {exc}")
        if scheme.lower() != "digest":  # RFC 4475 §3.3.7 regaut01
            return AuthResult(False, None, False, f"unsupported scheme {scheme[:20]!r}")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if not p.get(k)]
        user = p.get("username")
        if missing:
            return AuthResult(False, user, False, f"missing {', '.join(missing)}")
        if p["realm"] != self.realm:
            return AuthResult(False, user, False, "wrong realm")
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm not in self.algorithms:
            return AuthResult(False, user, False, f"unsupported algorithm {algorithm[:20]!r}")
        age = self._nonce_age(p["nonce"], now)
        if age is None:
            return AuthResult(False, user, False, "bad nonce")
        qop = p.get("qop")
        if qop is not None and qop.lower() != "auth":
            return AuthResult(False, user, False, f"unsupported qop {qop[:20]!r}")
        full = qop is not None and bool(p.get("cnonce")) and bool(p.get("nc"))
        password = users.get(p["username"])
        expected = digest_response(
            algorithm,
            username=p["username"],
            realm=p["realm"],
            password=_DUMMY_PASSWORD if password is None else password,
            method=method,
            uri=p["uri"],
            nonce=p["nonce"],
            qop="auth" if full else None,  # svcrack: qop without cnonce/nc is RFC 2069
            nc=p.get("nc", ""),
            cnonce=p.get("cnonce", ""),
        )
        match = hmac.compare_digest(expected.encode(), p["response"].lower().encode())
        if password is None or not match:
            return AuthResult(False, user, False, "wrong credentials")
        if age > self.nonce_ttl:
            return AuthResult(False, user, True, "stale nonce")
        return AuthResult(True, user, False, "ok")


class UnsupportedChallenge(ValueError):
    """A challenge we cannot answer (other scheme, algorithm or qop)."""


def authorization_for(
    challenge: str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The Authorization value answering one WWW-Authenticate/Proxy-Authenticate value."""
    try:
        scheme, p = parse_auth_params(challenge)
    except DigestParseError as exc:
        raise UnsupportedChallenge(str(exc)) from exc
    algorithm = p.get("algorithm", "MD5").upper()
    if scheme.lower() != "digest" or algorithm not in _HASHES or "nonce" not in p:
        raise UnsupportedChallenge(f"cannot answer {challenge[:60]!r}")
    offered = [q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()]
    if offered and "auth" not in offered:
        raise UnsupportedChallenge(f"qop {p['qop']!r} without auth")
    realm, nonce = p.get("realm", ""), p["nonce"]
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm, username=username, realm=realm, password=password, method=method, uri=uri,
        nonce=nonce, qop="auth" if offered else None, nc=nc_text, cnonce=cnonce,
    )
    parts = [
        f"username={_quote(username)}", f"realm={_quote(realm)}", f"nonce={_quote(nonce)}",
        f"uri={_quote(uri)}", f"response={_quote(response)}", f"algorithm={algorithm}",
    ]
    if offered:
        parts += [f"cnonce={_quote(cnonce)}", "qop=auth", f"nc={nc_text}"]
    if "opaque" in p:
        parts.append(f"opaque={_quote(p['opaque'])}")
    return "Digest " + ", ".join(parts)


def pick_challenge(values: Sequence[str]) -> str | None:
    """The strongest challenge we can answer among several (RFC 8760 §2.4: SHA-256 first)."""
    best: tuple[int, str] | None = None
    for value in values:
        try:
            scheme, p = parse_auth_params(value)
        except DigestParseError:
            continue
        algorithm = p.get("algorithm", "MD5").upper()
        if scheme.lower() == "digest" and algorithm in _HASHES:
            rank = list(_HASHES).index(algorithm)
            if best is None or rank > best[0]:
                best = (rank, value)
    return best[1] if best else None
