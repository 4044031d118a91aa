"""HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760), sans-IO.

Server side: `DigestServer` issues challenges whose nonce is self-verifying — issue time, a
random salt and an HMAC over both with a secret — so a forged or foreign nonce is recognised
without a table of issued nonces.  What *is* stored is which answers were already accepted
(`nonces.NonceBook`, bounded): a qop=auth answer needs a nonce-count above the last one seen
with its nonce, an answer without qop makes its nonce single-use, so no Authorization is
accepted twice (RFC 7616 §3.4.5).  The digest `uri` must name this request's Request-URI
(RFC 3261 §22.4, compared by host and user, see `_same_target`), so credentials for
`sip:1002` cannot place a call to another number.  A nonce that is expired, reused or not
ours, answered with the right password, is "stale": the client is re-challenged with
`stale=TRUE` and retries without asking its user (RFC 7616 §3.3).

What real peers send, all accepted (docs/peers.md):
* qop=auth with cnonce and nc (RFC 7616: SIPp, baresip);
* no qop at all, RFC 2069 (pyVoIP always, with `uri="sip:host;transport=UDP"`, not the R-URI);
* qop=auth without cnonce/nc but an RFC 2069 hash (sipvicious svcrack).
An unknown user costs the same hash work as a wrong password and gets the same answer, so
timing and replies do not reveal which extensions exist.  Every field is caller text that may
hold any octet (surrogateescape): `verify` is total and returns a result, never raises.

Client side: `authorization_for` answers one challenge (for registering to trunks).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pbxcore.sip.message import SipSyntaxError
from pbxcore.sip.nonces import NonceBook
from pbxcore.sip.uri import SIP_SCHEMES, parse_uri

_HASHES: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256"}
ALGORITHMS = tuple(_HASHES)
"""The digest algorithms this module computes, for `[sip] digest_algorithms`."""
# Our nonces: issue time (ms, hex), salt, HMAC (see make_nonce).  Explicit ASCII classes, so a
# Unicode digit such as "²" is not a digit here.
_NONCE = re.compile(r"([0-9a-f]{1,16})\.([0-9A-Za-z_-]{1,64})\.([0-9a-f]{32})")
_NC = re.compile(r"[0-9A-Fa-f]{1,8}")  # RFC 7616 §3.4: 8LHEX; shorter forms tolerated
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


def _octets(text: str) -> bytes:
    """UTF-8 octets of any str: surrogateescape gives back the octets a message was decoded
    from; a lone surrogate outside that range (only reachable from Python callers) is kept
    with surrogatepass rather than raising."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHES[algorithm], _octets(text)).hexdigest()


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
    """The credentials are right, the nonce is fresh and unused, the uri is this request's."""
    user: str | None
    """The username the client claimed (None if the header could not be read)."""
    stale: bool
    """Right password, but a nonce we cannot accept (expired, reused, not ours): re-challenge
    with stale=TRUE so the client retries without asking its user (RFC 7616 §3.3)."""
    reason: str
    """Why not ok, for logs; never tells an unknown user from a wrong password."""
    failure: bool = False
    """A failed attempt that counts toward the guess limits (wrong password, broken header)."""
    malformed: bool = False
    """The header is not `Digest name=value, ...` at all: answer 400, not 401."""


def _fail(user: str | None, reason: str, *, malformed: bool = False) -> AuthResult:
    return AuthResult(False, user, False, reason, failure=True, malformed=malformed)


def _stale(user: str | None, reason: str) -> AuthResult:
    return AuthResult(False, user, True, reason)


def _same_target(digest_uri: str, request_uri: str) -> bool:
    """RFC 3261 §22.4: the digest-uri names the request it authorises.

    Compared after normalisation (scheme, case of the host, port, parameters and %-escapes do
    not matter): the host must agree, and so must the user part when the digest-uri has one.
    pyVoIP answers with `sip:<server>;transport=UDP`, no user at all, whatever it calls (the
    peer notes in docs/peers.md): that form binds nothing but the host, so it is safe only because such an
    answer (no qop) makes its nonce single-use (`NonceBook`).
    """
    try:
        got, want = parse_uri(digest_uri), parse_uri(request_uri)
    except SipSyntaxError:
        return digest_uri == request_uri
    if got.scheme not in SIP_SCHEMES or got.host.lower() != want.host.lower():
        return False
    return got.user is None or got.user_unescaped == want.user_unescaped


class DigestServer:
    """Challenges and verifies Digest credentials for one realm.

    `algorithms` are offered in this order, most preferred first (RFC 8760 §2.4).  The default
    is MD5 alone: Debian 12's baresip (libre 1.1.0) refuses a 401 whose challenges include any
    algorithm it lacks, even beside MD5, so SHA-256 is opt-in (`[sip] digest_algorithms`).
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        algorithms: Sequence[str] = ("MD5",),
        nonce_ttl: float = 300.0,
        rand: Callable[[], str] = lambda: secrets.token_hex(8),
        max_nonces: int = 65536,
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
        self.used = NonceBook(nonce_ttl, max_nonces)

    def _mac(self, text: str) -> str:
        data = _octets(f"{self.realm}\x00{text}")
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()[:32]

    def make_nonce(self, now: float) -> str:
        """`<issued ms, hex>.<salt>.<hmac>`: verifiable by any node sharing the secret."""
        body = f"{int(now * 1000):x}.{self._rand()}"
        return f"{body}.{self._mac(body)}"

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate values, one per algorithm in order of preference, one nonce.

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

    def _issued(self, nonce: str) -> float | None:
        """When we issued this nonce (seconds), or None if it is not one of ours.

        The shape is checked first, with ASCII-only patterns: a nonce is caller text and may
        hold any octet, which must end in "not ours", never in an exception.
        """
        m = _NONCE.fullmatch(nonce)
        if m is None:
            return None
        body = f"{m.group(1)}.{m.group(2)}"
        if not hmac.compare_digest(m.group(3).encode("ascii"), self._mac(body).encode("ascii")):
            return None
        return int(m.group(1), 16) / 1000

    def verify(
        self, authorization: str | None, method: str, request_uri: str,
        users: Mapping[str, str], now: float,
    ) -> AuthResult:
        """Check an Authorization value for this request.  Total: any text in any field (octets
        decoded with surrogateescape) gives a result, never an exception."""
        if authorization is None:
            return AuthResult(False, None, False, "no credentials")
        try:
            scheme, p = parse_auth_params(authorization)
        except DigestParseError as exc:
            return _fail(None, f"malformed credentials: {exc}", malformed=True)
        if scheme.lower() != "digest":  # RFC 4475 §3.3.7 regaut01
            return _fail(None, f"unsupported scheme {scheme[:20]!r}")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if not p.get(k)]
        user = p.get("username")
        if missing:
            return _fail(user, f"missing {', '.join(missing)}")
        if p["realm"] != self.realm:
            return _fail(user, "wrong realm")
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm not in self.algorithms:
            return _fail(user, f"unsupported algorithm {algorithm[:20]!r}")
        qop = p.get("qop")
        if qop is not None and qop.lower() != "auth":
            return _fail(user, f"unsupported qop {qop[:20]!r}")
        full = qop is not None and bool(p.get("cnonce")) and bool(p.get("nc"))
        if full and not _NC.fullmatch(p["nc"]):
            return _fail(user, "malformed nc")
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
        # Both sides as octets: compare_digest refuses non-ASCII str, and the caller's response
        # may hold anything.
        match = hmac.compare_digest(expected.encode("ascii"), _octets(p["response"].lower()))
        if password is None or not match:
            return _fail(user, "wrong credentials")
        # From here the password is right: refusals say stale so the client retries.
        issued = self._issued(p["nonce"])
        if issued is None:
            return _stale(user, "nonce not ours")  # e.g. issued before a restart
        age = now - issued
        if age < -1.0:  # from the future, beyond clock skew
            return _stale(user, "nonce not ours")
        if age > self.nonce_ttl:
            return _stale(user, "stale nonce")
        if not _same_target(p["uri"], request_uri):
            return _fail(user, "digest uri does not match the Request-URI")
        if not self.used.accept(p["nonce"], issued, int(p["nc"], 16) if full else None, now):
            return _stale(user, "replayed nonce")
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
