"""Cutting a SIP byte stream (TCP, TLS) into messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

Theory of operation: `StreamFramer.feed(data)` appends to a buffer and returns every complete
frame found: a frame is the header section, the empty line, and exactly Content-Length octets, to
be handed to `parse_message(frame, stream=True)`.  On a stream Content-Length is mandatory (§18.3):
without it the end of the message is unknowable, as it is with a negative, non-numeric or repeated
value, so those raise `FramingError` (status 400) and the adapter answers if it can and closes the
connection.  Frames completed before the error in the same call travel in `FramingError.frames`;
after a FramingError the framer stays broken (every later feed raises again, with no frames).

A message whose Content-Length promises more than has arrived is simply incomplete (RFC 4475
§3.1.2.2 clerr over TCP): nothing is returned and the adapter's idle timeout closes the connection.
Memory is bounded by `max_header_bytes + max_body_bytes` plus one read.

Keep-alives (RFC 5626 §3.5.1): a CRLFCRLF "ping" between messages comes back as the frame
b"\\r\\n\\r\\n" so the adapter can answer with a CRLF "pong"; a lone CRLF (a pong, or the stray
CRLF RFC 3261 §7.5 tells us to ignore) is dropped.
"""

from __future__ import annotations

import re

from pbxcore.sip.message import SipSyntaxError, canonical_name, find_head_end
from pbxcore.sip.numbers import ascii_uint

PING = b"\r\n\r\n"
PONG = b"\r\n"

_LINE_END = re.compile(rb"\r?\n")
_NAME = re.compile(rb"^([^:\s]+)[ \t]*:")


class FramingError(SipSyntaxError):
    """The stream cannot be cut into messages any more: answer 400 if possible, then close.

    `frames` holds the complete frames that came before the bad one in the same `feed` call:
    they are good messages and should still be processed.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason, status)
        self.frames: list[bytes] = []


class StreamFramer:
    """Incremental SIP stream framer; pure (bytes in, frames out)."""

    def __init__(self, *, max_header_bytes: int = 16384, max_body_bytes: int = 1 << 20) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for the empty line
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned in a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames: list[bytes] = []
        try:
            while True:
                frame = self._next_frame()
                if frame is None:
                    return frames
                frames.append(frame)
        except FramingError as exc:
            exc.frames = frames
            self._error = FramingError(exc.reason, exc.status)
            raise

    def _next_frame(self) -> bytes | None:
        buf = self._buffer
        # Keep-alives and stray line ends between messages.
        while buf and buf[0] in b"\r\n":
            if buf[:4] == PING:
                del buf[:4]
                self._scanned = 0
                return PING
            if buf[:2] == b"\r\n" and len(buf) < 4 and PING.startswith(bytes(buf)):
                return None  # maybe the start of a ping: wait for more
            if buf[:1] == b"\r" and len(buf) < 2:
                return None
            if buf[:2] == b"\r\n":
                del buf[:2]
            elif buf[:1] == b"\n":
                del buf[:1]
            else:
                raise FramingError("bare CR between messages")
            self._scanned = 0
        if not buf:
            return None
        found = find_head_end(buf, max(0, self._scanned - 3))
        if found is None:
            self._scanned = len(buf)
            if len(buf) > self.max_header_bytes:
                raise FramingError(f"header section longer than {self.max_header_bytes} octets")
            return None
        head_end, body_start = found
        if head_end > self.max_header_bytes:
            raise FramingError(f"header section longer than {self.max_header_bytes} octets")
        length = self._content_length(bytes(buf[:head_end]))
        if length > self.max_body_bytes:
            raise FramingError(f"body longer than {self.max_body_bytes} octets")
        end = body_start + length
        if len(buf) < end:
            self._scanned = head_end  # the next search finds this same empty line at once
            return None
        frame = bytes(buf[:end])
        del buf[:end]
        self._scanned = 0
        return frame

    @staticmethod
    def _content_length(head: bytes) -> int:
        """The one Content-Length of a header section (compact `l`, any case, folded)."""
        values: list[bytes] = []
        lines = _LINE_END.split(head)[1:]
        for i, line in enumerate(lines):
            m = _NAME.match(line)
            if not m:
                continue
            name = m.group(1).decode("latin-1")
            if canonical_name(name) != "Content-Length":
                continue
            value = line[m.end() :]
            for cont in lines[i + 1 :]:  # folded value (§7.3.1)
                if cont[:1] not in (b" ", b"\t"):
                    break
                value += b" " + cont
            values.extend(v.strip() for v in value.split(b","))
        if not values:
            raise FramingError("no Content-Length on a stream transport (RFC 3261 §18.3)")
        if len(values) > 1:
            raise FramingError("more than one Content-Length")
        # ASCII digits, bounded before conversion (numbers.py); larger than the body limit is
        # refused by the caller with its own reason.
        length = ascii_uint(values[0].decode("latin-1"), 10**12)
        if length is None:
            raise FramingError(f"bad Content-Length {values[0][:20]!r}")
        return length
