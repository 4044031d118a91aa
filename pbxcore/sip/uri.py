"""SIP and tel URIs (RFC 3261 §19.1, RFC 3966): parse, inspect, serialize.

Theory of operation: `parse_uri` splits a URI into its parts *without* unescaping them, so
`str(parse_uri(text))` gives `text` back (modulo the scheme's case, which is folded to lower case).
Unescaping is done on demand (`user_unescaped`) and exactly once (RFC 3261 §19.1.2,
RFC 4475 §3.1.1.3: `value%25%34%31` is `value%41`, never `valueA`).

Only `sip:`, `sips:` and `tel:` are understood; any other scheme raises `SipSyntaxError` with
status 416 (Unsupported URI Scheme, RFC 3261 §8.2.2.1).  A tel: URI comes back as
`SipUri(scheme="tel", user=<number>, host="", ...)`, its `;params` in `params`.

Hosts are kept without the IPv6 brackets (`host="::1"`), so they can go to a socket as they are;
`__str__` and `hostport` put the brackets back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pbxcore.sip.message import SipSyntaxError
from pbxcore.sip.numbers import ascii_uint

SIP_SCHEMES = frozenset({"sip", "sips"})

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# RFC 3261 §25.1 hostname / IPv4address; '_' tolerated (seen in the wild, harmless).
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?$")
_IPV6 = re.compile(r"^\[([0-9A-Fa-f:.]+)\]$")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
# Characters that never occur unescaped anywhere in a SIP URI (RFC 3261 §25.1): whitespace,
# controls, angle brackets, double quote.  Their presence means the text is not one URI.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\"]")


def unescape(text: str) -> str:
    """Replace each %XX by its octet, once (RFC 3261 §19.1.2); invalid escapes stay literal.

    Octets are decoded as UTF-8 with `surrogateescape`, so nothing is lost; a %00 becomes "\\x00"
    and callers that hand the value to C strings, argv or the environment must sanitise it.
    """
    if "%" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw).decode(
        "utf-8", "surrogateescape"
    )


def is_sip_scheme(text: str) -> bool:
    """True when `text` starts with `sip:` or `sips:` (any case)."""
    m = _SCHEME.match(text.strip())
    return m is not None and m.group(1).lower() in SIP_SCHEMES


@dataclass(frozen=True)
class SipUri:
    """A parsed sip:, sips: or tel: URI; every part is kept escaped, as received."""

    scheme: str
    """Lower-case scheme: "sip", "sips" or "tel"."""
    user: str | None
    """User part (escaped); for tel: the number.  None when the URI has no userinfo."""
    password: str | None
    """Password after the ':' in userinfo (deprecated by RFC 3261 §19.1.1, still legal)."""
    host: str
    """Host name or address, IPv6 without brackets; "" for tel:."""
    port: int | None
    """Explicit port, None when absent (the transport's default applies, §19.1.2)."""
    params: tuple[tuple[str, str | None], ...] = ()
    """uri-parameters in order; value None for a parameter without '='."""
    headers: tuple[tuple[str, str], ...] = ()
    """URI headers after '?' (escaped).  Never turn these into real headers unasked."""

    def param(self, name: str) -> str | None:
        """Value of a uri-parameter (case-insensitive name); "" if present without value."""
        key = name.lower()
        for n, v in self.params:
            if unescape(n).lower() == key:
                return "" if v is None else v
        return None

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %XX escapes decoded exactly once (NUL kept as "\\x00")."""
        return None if self.user is None else unescape(self.user)

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    def __str__(self) -> str:
        if self.scheme == "tel":
            out = f"tel:{self.user or ''}"
        else:
            userinfo = ""
            if self.user is not None:
                userinfo = self.user
                if self.password is not None:
                    userinfo += ":" + self.password
                userinfo += "@"
            out = f"{self.scheme}:{userinfo}{self.hostport}"
        for name, value in self.params:
            out += f";{name}" if value is None else f";{name}={value}"
        if self.headers:
            out += "?" + "&".join(f"{n}={v}" for n, v in self.headers)
        return out


def _parse_params(text: str, *, what: str) -> tuple[tuple[str, str | None], ...]:
    """`;a=1;lr` (leading ';' included) -> (("a", "1"), ("lr", None))."""
    params: list[tuple[str, str | None]] = []
    for part in text.split(";")[1:]:
        name, eq, value = part.partition("=")
        if not name:
            raise SipSyntaxError(f"empty parameter in {what}")
        params.append((name, value if eq else None))
    return tuple(params)


def _parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if not name:
            raise SipSyntaxError("empty header in URI")
        headers.append((name, value))
    return tuple(headers)


def parse_host(text: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` -> (host without brackets, port or None)."""
    port: int | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipSyntaxError(f"unterminated IPv6 reference {text[:60]!r}")
        host_part, rest = text[: end + 1], text[end + 1 :]
        m = _IPV6.match(host_part)
        if not m or ":" not in m.group(1):
            raise SipSyntaxError(f"bad IPv6 reference {host_part[:60]!r}")
        host = m.group(1)
        if rest:
            if not rest.startswith(":"):
                raise SipSyntaxError(f"bad host {text[:60]!r}")
            port = _port(rest[1:])
        return host, port
    host, colon, port_text = text.partition(":")
    if not _HOSTNAME.match(host):
        raise SipSyntaxError(f"bad host {text[:60]!r}")
    if colon:
        port = _port(port_text)
    return host, port


def _port(text: str) -> int:
    """RFC 3261 §25.1 `port = 1*DIGIT`, which a socket bounds to 65535 (ASCII digits only)."""
    port = ascii_uint(text, 65535)
    if port is None:
        raise SipSyntaxError(f"bad port {text[:12]!r}")
    return port


def parse_uri(text: str) -> SipUri:
    """Parse a sip:, sips: or tel: URI; SipSyntaxError (400, or 416 for other schemes)."""
    m = _SCHEME.match(text)
    if not m:
        raise SipSyntaxError(f"not a URI {text[:60]!r}")
    scheme = m.group(1).lower()
    rest = text[m.end() :]
    if _FORBIDDEN.search(rest):
        raise SipSyntaxError(f"illegal character in URI {text[:60]!r}")
    if scheme == "tel":
        return _parse_tel(rest)
    if scheme not in SIP_SCHEMES:
        raise SipSyntaxError(f"unsupported URI scheme {scheme[:20]!r}", 416)
    user: str | None = None
    password: str | None = None
    # The user part may hold ';', '?', ':' and ',' (RFC 3261 §25.1 user-unreserved; RFC 4475
    # §3.1.1.2 and §3.1.1.9), but never an unescaped '@', and the host part never holds one: so
    # userinfo ends at the last '@'.
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        if not user:
            raise SipSyntaxError("empty user part in URI")
    hostport, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = hostport.partition(";")
    host, port = parse_host(hostport)
    params = _parse_params(";" + param_text, what="URI") if semi else ()
    headers = _parse_headers(header_text) if qmark else ()
    return SipUri(scheme, user, password, host, port, params, headers)


def _parse_tel(rest: str) -> SipUri:
    """RFC 3966: `tel:+1-555-0100;phone-context=example.com`; the number goes to `user`."""
    number, semi, param_text = rest.partition(";")
    if not number or "?" in number or "@" in number:
        raise SipSyntaxError(f"bad tel URI {rest[:60]!r}")
    params = _parse_params(";" + param_text, what="tel URI") if semi else ()
    return SipUri("tel", number, None, "", None, params, ())
