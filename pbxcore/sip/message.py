"""SIP message model, parser and serializer (RFC 3261 §7, §20).

Theory of operation: `parse_message` takes the octets of exactly one message (one UDP datagram, or
one frame cut by `pbxcore.sip.framing` from a TCP stream) and returns a `Request` or `Response`.
Header names are kept in canonical form (compact forms of RFC 3261 §7.3.3 expanded, case folded to
the usual spelling); values are kept as received, unfolded (§7.3.1), so unknown headers round-trip
as opaque text.  `to_bytes()` serializes with a correct Content-Length.

Anything malformed raises `SipSyntaxError` carrying the status the peer should get (400, 505...):
it is the peer's fault, never ours (STYLE.md rule 5).  Text is decoded as UTF-8 with
`surrogateescape`, so arbitrary octets survive a parse/serialize round trip byte for byte.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pbxcore.sip.numbers import ascii_uint

ENCODING = "utf-8"
ERRORS = "surrogateescape"

#: RFC 3261 §7.3.3 and the IANA registry of compact forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

_SPECIAL_SPELLING: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

#: Headers whose value is a comma-separated list (RFC 3261 §7.3.1), so several values may share one
#: line.  Contact and the address headers need quote/angle-aware splitting, done by `split_list`.
LIST_HEADERS = frozenset(
    {
        "via", "route", "record-route", "contact", "allow", "supported", "require",
        "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
        "allow-events", "in-reply-to", "content-encoding", "content-language", "path",
        "warning", "alert-info", "call-info", "error-info",
    }
)

#: Headers that may appear once only; two of them is a 400 (RFC 4475 §3.3.8 multi01).
SINGLE_HEADERS = frozenset(
    {"call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type", "expires"}
)

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_VERSION = re.compile(r"^SIP/([0-9]+)\.([0-9]+)$", re.IGNORECASE)
_STATUS = re.compile(r"^[1-6][0-9][0-9]$")
# The empty line ending the header section; bare LF tolerated, mixed line ends too (§7.5).
_EMPTY_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(r"\r?\n")
#: RFC 3261 §20.22: Max-Forwards is 0-255.
MAX_MAX_FORWARDS = 255
#: RFC 3261 §8.1.1.5: a CSeq number "MUST be less than 2**31".
MAX_CSEQ = 2**31 - 1
#: No body is larger than the largest datagram (§18.1.1); a stream's frames are bounded by the
#: framer's own, smaller, limit.  Bounds the digits before conversion (see `numbers.py`).
MAX_CONTENT_LENGTH = 2**32 - 1


class SipSyntaxError(ValueError):
    """The peer sent something we cannot accept; `status` is what to answer a request with."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@functools.lru_cache(maxsize=1024)  # every lookup canonicalizes; a bounded cache, names repeat
def canonical_name(name: str) -> str:
    """`v` -> `Via`, `call-id` -> `Call-ID`, `X-foo-BAR` -> `X-Foo-Bar`."""
    low = name.strip().lower()
    low = COMPACT_FORMS.get(low, low)
    special = _SPECIAL_SPELLING.get(low)
    if special:
        return special
    return "-".join(part[:1].upper() + part[1:] for part in low.split("-"))


def split_list(value: str) -> list[str]:
    """Split a header value on commas that are outside quotes and <> (RFC 3261 §7.3.1)."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if in_quotes and ch == "\\":
            escaped = True
            current.append(ch)
            continue
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "<" and not in_quotes:
            in_angle = True
        elif ch == ">" and not in_quotes:
            in_angle = False
        elif ch == "," and not in_quotes and not in_angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


class Headers:
    """An ordered multi-map of header fields with case-insensitive, compact-aware lookup."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items or []]

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every field line of that name, as received (not comma-split)."""
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def values(self, name: str) -> list[str]:
        """Every value of a list header, comma-split across all its lines."""
        out: list[str] = []
        for line in self.get_all(name):
            out.extend(split_list(line))
        return out

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, keeping the position of the first."""
        key = canonical_name(name)
        for i, (n, _) in enumerate(self._items):
            if n == key:
                self._items[i] = (key, value)
                self._items = [
                    item for j, item in enumerate(self._items) if j <= i or item[0] != key
                ]
                return
        self._items.append((key, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if n != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class _Identity:
    """Call-ID and CSeq, which requests and responses carry alike (RFC 3261 §8.1.1)."""

    headers: Headers

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq") or "")


@dataclass
class Request(_Identity):
    """A SIP request (RFC 3261 §7.1)."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        start = f"{self.method} {self.uri} {self.version}"
        return _serialize(start, self.headers, self.body)

    @property
    def uri_scheme(self) -> str:
        """Lower-case Request-URI scheme; the UAS answers 416 to anything but sip/sips/tel."""
        return self.uri.partition(":")[0].lower()

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards as a number (`0068` -> 68), None when absent (parse checked 0..255)."""
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_uint(value.strip(), MAX_MAX_FORWARDS,
                                                     "Max-Forwards")


@dataclass
class Response(_Identity):
    """A SIP response (RFC 3261 §7.2)."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        start = f"{self.version} {self.status} {self.reason}"
        return _serialize(start, self.headers, self.body)



Message = Request | Response


def _serialize(start: str, headers: Headers, body: bytes) -> bytes:
    """One Content-Length, equal to the body, where the first one was (else last).

    A CR or LF in the start line, a name or a value would let text forge headers on the wire:
    that is a bug of whoever built the message, so ValueError, not SipSyntaxError.
    """
    lines = [start]
    length_written = False
    for name, value in headers:
        if name == "Content-Length":
            if not length_written:
                lines.append(f"Content-Length: {len(body)}")
                length_written = True
            continue
        lines.append(f"{name}: {value}")
    if not length_written:
        lines.append(f"Content-Length: {len(body)}")
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError(f"CR or LF inside a header or start line: {line[:60]!r}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode(ENCODING, ERRORS) + body


def parse_uint(text: str, maximum: int, what: str, status: int = 400) -> int:
    """An ASCII decimal field bounded by `maximum` (`numbers.ascii_uint`), else SipSyntaxError.

    Every numeric header field goes through here or `numbers.py`, never bare `int()`.
    """
    value = ascii_uint(text, maximum)
    if value is None:
        raise SipSyntaxError(f"bad {what} {text[:20]!r}", status)
    return value


def parse_cseq(value: str) -> tuple[int, str]:
    """`"0009 INVITE"` -> (9, "INVITE"); RFC 3261 §8.1.1.5 bounds the number below 2**31."""
    parts = value.split()
    if len(parts) != 2 or not _TOKEN.match(parts[1]):
        raise SipSyntaxError(f"bad CSeq {value[:40]!r}")
    return parse_uint(parts[0], MAX_CSEQ, "CSeq number"), parts[1]


def find_head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """(end of the header section, start of the body), or None when there is no empty line yet.

    Shared with `framing` so that UDP and TCP agree on where a header section ends.
    """
    m = _EMPTY_LINE.search(data, start)
    return None if m is None else (m.start(), m.end())


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split at the empty line; tolerate bare-LF line ends (robustness, RFC 3261 §7.5)."""
    found = find_head_end(data)
    if found is None:
        raise SipSyntaxError("no empty line after the header section")
    return data[: found[0]], data[found[1] :]


def header_lines(head: str) -> list[str]:
    """Split the header section into lines and unfold continuation lines (RFC 3261 §7.3.1).

    The first line is the start line; a continuation right after it has nothing to continue.
    """
    raw = _LINE_END.split(head)
    lines: list[str] = raw[:1]
    for line in raw[1:]:
        if line[:1] in (" ", "\t"):
            if len(lines) < 2:
                raise SipSyntaxError("continuation line before the first header")
            lines[-1] = lines[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            lines.append(line)
    return lines


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """Parse one SIP message.

    `stream=False` (UDP, RFC 3261 §18.3): octets past Content-Length are discarded, a missing
    Content-Length means "the rest of the datagram".  `stream=True`: the framer already cut the
    message to its Content-Length, so a missing Content-Length means no body.
    """
    data = data.lstrip(b"\r\n")  # §7.5: ignore CRLFs before the start line (keep-alives)
    if not data:
        raise SipSyntaxError("empty message")
    head_bytes, rest = _split_head(data)
    if b"\r" in head_bytes.replace(b"\r\n", b""):
        # A bare CR is no line end and no quoted-pair may carry it (§25.1): a peer that sends one
        # hopes some other element will see a line break we do not see.
        raise SipSyntaxError("bare CR in the header section")
    lines = header_lines(head_bytes.decode(ENCODING, ERRORS))
    start = lines[0]
    headers = Headers()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if not sep or not _TOKEN.match(name):
            raise SipSyntaxError(f"malformed header line {line[:40]!r}")
        headers.add(name, value.strip(" \t"))
    body = _body(headers, rest, stream=stream)
    if start[:4].upper() == "SIP/":
        return _parse_response(start, headers, body)
    return _parse_request(start, headers, body)


def _body(headers: Headers, rest: bytes, *, stream: bool) -> bytes:
    lengths = headers.get_all("Content-Length")
    if not lengths:
        return b"" if stream else rest
    if len(lengths) > 1 or "," in lengths[0]:
        raise SipSyntaxError("more than one Content-Length")
    length = parse_uint(lengths[0].strip(), MAX_CONTENT_LENGTH, "Content-Length")
    if length > len(rest):
        raise SipSyntaxError("Content-Length larger than the message")
    return rest[:length]


def _parse_response(start: str, headers: Headers, body: bytes) -> Response:
    version, _, remainder = start.partition(" ")
    code, _, reason = remainder.partition(" ")
    if not _VERSION.match(version):
        raise SipSyntaxError(f"bad version {version!r}", 505)
    if not _STATUS.match(code):
        raise SipSyntaxError(f"bad status code {code[:12]!r}")
    _check_single_headers(headers)
    if "CSeq" in headers:
        # Checked here so that `.cseq` never raises later (RFC 4475 §3.1.2.5 scalarlg).
        parse_cseq(headers.get("CSeq") or "")
    return Response(int(code), reason, headers, body, version)


def _parse_request(start: str, headers: Headers, body: bytes) -> Request:
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipSyntaxError("request line must be METHOD SP Request-URI SP SIP-Version")
    method, uri, version = parts
    if not _TOKEN.match(method):
        raise SipSyntaxError(f"bad method {method[:40]!r}")
    if not _SCHEME.match(uri) or any(c in uri for c in '<>"') or not uri.isprintable():
        raise SipSyntaxError(f"bad Request-URI {uri[:60]!r}")
    m = _VERSION.match(version)
    if not m:
        raise SipSyntaxError(f"bad version {version!r}")
    if version.upper() != "SIP/2.0":
        raise SipSyntaxError(f"version {version} not supported", 505)
    _check_single_headers(headers)
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        if required not in headers:
            raise SipSyntaxError(f"missing {required} header")
    _number, cseq_method = parse_cseq(headers.get("CSeq") or "")
    if cseq_method != method:
        raise SipSyntaxError("CSeq method does not match the request method")
    max_forwards = headers.get("Max-Forwards")
    if max_forwards is not None:
        parse_uint(max_forwards.strip(), MAX_MAX_FORWARDS, "Max-Forwards")
    _check_addresses(uri, headers)
    return Request(method, uri, headers, body, "SIP/2.0")


def _check_addresses(uri: str, headers: Headers) -> None:
    """Request-URI (sip/sips only: other schemes are the UAS's 416), Via list, From, To.

    Imported here because address.py builds on this module.
    """
    from pbxcore.sip.address import parse_name_addr, request_vias
    from pbxcore.sip.uri import is_sip_scheme, parse_uri

    if is_sip_scheme(uri):
        parse_uri(uri)
    request_vias(headers)
    parse_name_addr(headers.get("From") or "")
    parse_name_addr(headers.get("To") or "")


def _check_single_headers(headers: Headers) -> None:
    for name in SINGLE_HEADERS:
        lines = headers.get_all(name)
        if len(lines) > 1:
            raise SipSyntaxError(f"more than one {canonical_name(name)} header")
