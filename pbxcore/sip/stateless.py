"""Best-effort error answers for requests that did not parse (RFC 3261 §16.3, §8.2.2 spirit).

When `parse_message` rejects a datagram we still owe the sender a 400/505 if it looks like a
request and carries enough to address a response: the Via, From, To, Call-ID and CSeq lines are
copied as received.  A message that does not even give us those gets no answer (RFC 4475 §3.3.1:
"must not break although To/From/Call-ID needed to build a normal response are absent" — we then
answer with what we have, but never invent a Via).
"""

from __future__ import annotations

import re

from pbxcore.sip.message import COMPACT_FORMS, ENCODING, ERRORS

_COPIED = ("via", "from", "to", "call-id", "cseq")
_REQUEST_LINE = re.compile(rb"^[A-Za-z0-9\-.!%*_+`'~]+ ")


def looks_like_request(data: bytes) -> bool:
    """A start line that is not a status line: responses never get answers (RFC 3261 §17.1.3)."""
    stripped = data.lstrip(b"\r\n")
    return not stripped.startswith(b"SIP/") and bool(_REQUEST_LINE.match(stripped))


def error_response(data: bytes, status: int, reason: str) -> bytes | None:
    """Build `SIP/2.0 <status> <reason>` copying the raw identifying headers, or None.

    None for an ACK too: an ACK is never answered (RFC 3261 §17.1.1.3, §17.2.1), not even a
    malformed one."""
    if not looks_like_request(data) or data.lstrip(b"\r\n").startswith(b"ACK "):
        return None
    head = data.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    text = head.decode(ENCODING, ERRORS)
    copied: list[str] = []
    for line in re.split(r"\r?\n", text)[1:]:
        if not line or line[0] in " \t":
            continue  # folded continuation lines are dropped: the copy need only be good enough
        name, sep, value = line.partition(":")
        low = name.strip().lower()
        low = COMPACT_FORMS.get(low, low)
        if sep and low in _COPIED and _printable(value):
            copied.append(f"{_SPELLING[low]}: {value.strip()}")
    if not any(line.startswith("Via:") for line in copied):
        return None
    safe_reason = "".join(ch for ch in reason if ch.isprintable())[:120]
    lines = [f"SIP/2.0 {status} {safe_reason}", *copied, "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(ENCODING, ERRORS)


_SPELLING = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def _printable(value: str) -> bool:
    return all(ch.isprintable() or ch == "\t" for ch in value)
