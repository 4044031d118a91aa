"""The messages a UA builds in answer to or alongside a request: responses (RFC 3261 §8.2.6),
CANCEL (§9.1), the ACK for a non-2xx (§17.1.1.3), fresh branches (§8.1.1.7).  Pure."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from pbxcore.sip.address import parse_name_addr
from pbxcore.sip.message import Headers, Request, Response, SipSyntaxError

MAGIC_COOKIE = "z9hG4bK"
"""RFC 3261 §8.1.1.7: a branch that starts with it was built by the RFC 3261 rules."""

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def new_branch(rand: Callable[[], str] = lambda: secrets.token_hex(12)) -> str:
    """A fresh RFC 3261 branch (§8.1.1.7): the magic cookie plus a random token."""
    return MAGIC_COOKIE + rand()


def header_tag(value: str) -> str | None:
    """The `tag` parameter of a From/To value, or None (also when the value is malformed)."""
    try:
        return parse_name_addr(value).tag or None
    except SipSyntaxError:
        return None


def make_response(
    req: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """Build a response to `req` (§8.2.6): Via, From, To, Call-ID, CSeq copied."""
    h = Headers()
    for via in req.headers.get_all("Via"):
        h.add("Via", via)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = req.headers.get(name)
        if value is None:
            continue
        if name == "To" and to_tag and status != 100 and header_tag(value) is None:
            value = f"{value};tag={to_tag}"
        h.add(name, value)
    if req.method == "INVITE" and 100 < status < 300:
        # §12.1.1: a response that establishes a dialog carries the request's Record-Route,
        # every value in order, so the caller's in-dialog requests pass the proxies too.
        for rr in req.headers.get_all("Record-Route"):
            h.add("Record-Route", rr)
    timestamp = req.headers.get("Timestamp")
    if status == 100 and timestamp is not None:  # §8.2.6.1
        h.add("Timestamp", timestamp)
    for name, value in headers:
        h.add(name, value)
    if reason is None:
        reason = REASONS.get(status) or REASONS.get(status // 100 * 100, "Unknown")
    return Response(status, reason, h, body)


def _request_from(req: Request, method: str, to: str | None) -> Request:
    """CANCEL or non-2xx ACK: one Via (the request's top one), same Route, same CSeq number."""
    h = Headers()
    h.add("Via", req.headers.values("Via")[0])
    for route in req.headers.get_all("Route"):
        h.add("Route", route)
    h.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        value = to if name == "To" and to is not None else req.headers.get(name)
        if value is not None:
            h.add(name, value)
    h.add("CSeq", f"{req.cseq[0]} {method}")
    return Request(method, req.uri, h)


def build_cancel(invite: Request) -> Request:
    """The CANCEL for a pending INVITE (§9.1)."""
    return _request_from(invite, "CANCEL", None)


def build_ack_for_non2xx(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 3xx-6xx (§17.1.1.3): To from the response."""
    return _request_from(invite, "ACK", response.headers.get("To"))
