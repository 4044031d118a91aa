"""Address headers (From, To, Contact, Route...) and Via (RFC 3261 §20.10, §20.42, §25.1).

Theory of operation: header values arrive unfolded but otherwise raw (see `message.py`).  These
parsers turn one value into a frozen dataclass and back.  Parameter values are kept raw (a quoted
value keeps its quotes) so `str()` re-emits what came in; display names are unescaped on parse and
re-quoted on output.

Leniency, chosen per RFC 4475: no LWS before '<' is accepted (§3.1.1.6 lwsdisp: a grammar bug in
RFC 3261), spaces just inside '<' '>' are ignored (§3.1.2.14 badaspec), an unquoted display name
with odd characters is taken as it is (§3.1.2.15 baddn).  Rejected with 400: an unterminated quoted
string (§3.1.2.6 quotbal), empty parameters such as `;;` (§3.1.2.1 badinv01), a missing '>'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from pbxcore.sip.message import Headers, SipSyntaxError, split_list
from pbxcore.sip.uri import SipUri, is_sip_scheme, parse_host, parse_uri

Params = tuple[tuple[str, str | None], ...]

_WS = " \t"
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# A parameter value: token, host (IPv6 too) or an unquoted oddity; quoted strings handled apart.
_VALUE = re.compile(r"[^ \t;,\"<>]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_URI_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\"]")
_PORT_COLON = re.compile(r"[ \t]*:[ \t]*(?=[0-9]+$)")
_VIA = re.compile(
    r"^([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(.*)$",
    re.DOTALL,
)


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """Read the quoted-string starting at text[i] == '"'; return (unescaped, index after it)."""
    out: list[str] = []
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            if j + 1 >= len(text):
                break
            out.append(text[j + 1])  # quoted-pair (§25.1): the next character, whatever it is
            j += 2
        elif ch == '"':
            return "".join(out), j + 1
        else:
            out.append(ch)
            j += 1
    raise SipSyntaxError("unterminated quoted string")


def parse_params(text: str, *, what: str = "header") -> Params:
    """`;a=1 ; b = "x y" ;lr` -> (("a", "1"), ("b", '"x y"'), ("lr", None)).

    LWS is allowed around ';' and '=' (§25.1 SEMI, EQUAL).  Anything else is a 400.
    """
    params: list[tuple[str, str | None]] = []
    i = _skip_ws(text, 0)
    while i < len(text):
        if text[i] != ";":
            raise SipSyntaxError(f"unexpected {text[i:i + 20]!r} in {what}")
        i = _skip_ws(text, i + 1)
        m = _TOKEN.match(text, i)
        if not m:
            raise SipSyntaxError(f"empty or bad parameter in {what}")
        name = m.group()
        i = _skip_ws(text, m.end())
        value: str | None = None
        if i < len(text) and text[i] == "=":
            i = _skip_ws(text, i + 1)
            if i < len(text) and text[i] == '"':
                _, end = _quoted(text, i)
                value, i = text[i:end], end
            else:
                vm = _VALUE.match(text, i)
                if not vm:
                    raise SipSyntaxError(f"parameter {name[:40]!r} without a value in {what}")
                value, i = vm.group(), vm.end()
            i = _skip_ws(text, i)
        params.append((name, value))
    return tuple(params)


def _find_param(params: Params, name: str) -> str | None:
    key = name.lower()
    for n, v in params:
        if n.lower() == key:
            return "" if v is None else v
    return None


def _set_params(params: Params, updates: dict[str, str | None]) -> Params:
    out = list(params)
    for name, value in updates.items():
        for i, (n, _) in enumerate(out):
            if n.lower() == name.lower():
                out[i] = (n, value)
                break
        else:
            out.append((name, value))
    return tuple(out)


def format_params(params: Iterable[tuple[str, str | None]]) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def quote(text: str) -> str:
    """A quoted-string for `text` (§25.1): '"' and '\\' and controls as quoted-pairs.

    CR and LF cannot be carried even as quoted-pairs, so they become spaces.
    """
    out = ['"']
    for ch in text:
        if ch in "\r\n":
            out.append(" ")
        elif ch in '"\\' or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _check_uri(uri: str) -> str:
    if not _SCHEME.match(uri) or _URI_FORBIDDEN.search(uri):
        raise SipSyntaxError(f"bad URI {uri[:60]!r}")
    if is_sip_scheme(uri):
        parse_uri(uri)  # raises on a malformed SIP URI
    return uri


@dataclass(frozen=True)
class NameAddr:
    """One From/To/Contact/Route value: optional display name, URI, header parameters."""

    display: str | None
    """Display name, unquoted and unescaped; None when absent ("" for an empty quoted one)."""
    uri: str
    """The URI as received (any scheme: To may legally be `isbn:...`, RFC 4475 §3.3.4)."""
    params: Params = ()
    """Header parameters (tag, expires, q...), values raw."""

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def param(self, name: str) -> str | None:
        """Value of a header parameter (case-insensitive); "" if present without value."""
        return _find_param(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params=_set_params(self.params, {"tag": tag}))

    def with_params(self, **updates: str | None) -> NameAddr:
        """Set parameters (None = present without value), keeping the others in order."""
        return replace(self, params=_set_params(self.params, dict(updates)))

    @property
    def sip_uri(self) -> SipUri:
        """The URI parsed (SipSyntaxError, 416, for schemes other than sip/sips/tel)."""
        return parse_uri(self.uri)

    def __str__(self) -> str:
        display = "" if self.display is None else quote(self.display) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(value: str) -> NameAddr:
    """Parse `"Name" <uri>;p=v`, `Name <uri>` or a bare addr-spec `uri;p=v`.

    In a bare addr-spec the ';params' belong to the header, not the URI (§20.10; RFC 4475
    §3.3.12 cparam01 versus §3.3.13 cparam02).
    """
    text = value.strip(_WS)
    display: str | None = None
    if text.startswith('"'):
        display, pos = _quoted(text, 0)
        rest = text[_skip_ws(text, pos) :]
        if not rest.startswith("<"):
            raise SipSyntaxError("display name not followed by <addr-spec>")
        uri, after = _angle(rest)
    elif "<" in text:
        lt = text.index("<")
        words = text[:lt].split()
        if '"' in text[:lt]:
            raise SipSyntaxError("stray quote in display name")
        display = " ".join(words) if words else None
        uri, after = _angle(text[lt:])
    else:
        uri, semi, ptext = text.partition(";")
        uri, after = uri.strip(_WS), semi + ptext
    return NameAddr(display, _check_uri(uri), parse_params(after, what="address"))


def _angle(text: str) -> tuple[str, str]:
    end = text.find(">")
    if end < 0:
        raise SipSyntaxError("missing '>' in address")
    return text[1:end].strip(_WS), text[end + 1 :]


def parse_contact_list(value: str) -> list[NameAddr] | Literal["*"]:
    """A Contact header value: `*` (§10.2.2, un-register all) or one or more addresses."""
    if value.strip(_WS) == "*":
        return "*"
    out: list[NameAddr] = []
    for part in split_list(value):
        if not part:
            raise SipSyntaxError("empty element in Contact list")
        out.append(parse_name_addr(part))
    return out


@dataclass(frozen=True)
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=...` (§20.42)."""

    transport: str
    """Transport token, upper case (UDP, TCP, TLS, SCTP, WS, or anything: RFC 4475 §3.1.1.10)."""
    host: str
    """sent-by host, IPv6 without brackets."""
    port: int | None
    """sent-by port, None when absent."""
    params: Params = ()
    """via-params in order, values raw."""

    def param(self, name: str) -> str | None:
        """Value of a parameter (case-insensitive); "" if present without value."""
        return _find_param(self.params, name)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> str | None:
        """None absent, "" present without value (RFC 3581 request), else the port text."""
        return self.param("rport")

    @property
    def sent_by(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def with_params(self, **updates: str | None) -> Via:
        """Set parameters, e.g. `received="192.0.2.1", rport="5062"` (§18.2.1, RFC 3581)."""
        return replace(self, params=_set_params(self.params, dict(updates)))

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    """Parse one Via value; LWS around '/', ':', ';' and '=' is allowed (§25.1, wsinv)."""
    m = _VIA.match(value.strip(_WS))
    if not m:
        raise SipSyntaxError(f"bad Via {value[:60]!r}")
    rest = m.group(4)
    semi = rest.find(";")
    sent_by, ptext = (rest, "") if semi < 0 else (rest[:semi], rest[semi:])
    # COLON is SWS ":" SWS (§25.1): squeeze LWS before a trailing port only (IPv6 has colons).
    sent_by = _PORT_COLON.sub(":", sent_by.strip(_WS))
    if not sent_by or any(c in sent_by for c in _WS):
        raise SipSyntaxError(f"bad Via sent-by {value[:60]!r}")
    host, port = parse_host(sent_by)
    return Via(m.group(3).upper(), host, port, parse_params(ptext, what="Via"))


def request_vias(headers: Headers) -> list[Via]:
    """Every Via value of a message, top first, comma-split across lines (§7.3.1)."""
    out: list[Via] = []
    for line in headers.get_all("Via"):
        for part in split_list(line):
            if not part:
                raise SipSyntaxError("empty element in Via list")
            out.append(parse_via(part))
    return out
