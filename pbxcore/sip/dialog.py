"""SIP dialogs (RFC 3261 §12): the state two UAs share after a 2xx (or 1xx with a tag) to INVITE.

Theory of operation: a `Dialog` is plain data — Call-ID, both tags, both URIs, the peer's target
(its Contact), the route set and both CSeq counters.  `as_uas` builds it from a request we answer,
`as_uac` from our request and the peer's response; `create_request` builds the next in-dialog
request (§12.2.1.1, loose and strict routing); `matches` and `dialog_key` find the dialog of an
incoming message.  No transaction state lives here: retransmissions and ACK matching belong to
`pbxcore.sip.transaction`.

Peers' quirks tolerated (docs/peers.md §1c): pyVoIP's ACK for a 2xx carries a random To tag, so an ACK
matches on Call-ID and the remote tag only; the To tag of its 200 to our BYE is random too, which
concerns the transaction (it matches on branch), not the dialog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pbxcore.sip.address import parse_contact_list, parse_name_addr
from pbxcore.sip.message import Headers, Request, Response, SipSyntaxError
from pbxcore.sip.uri import parse_uri


def _tag(value: str | None) -> str:
    """The tag of a From/To value; "" when absent (RFC 2543 peers, §12.1.1)."""
    if not value:
        return ""
    return parse_name_addr(value).tag or ""


def _uri(value: str | None) -> str:
    if not value:
        raise SipSyntaxError("missing From or To")
    return parse_name_addr(value).uri


def _contact_uri(message: Request | Response) -> str | None:
    value = message.headers.get("Contact")
    if value is None:
        return None
    contacts = parse_contact_list(value)
    if contacts == "*" or not contacts:
        raise SipSyntaxError("Contact '*' in a dialog-creating message")
    return contacts[0].uri


def _is_secure(request: Request) -> bool:
    return request.uri.lower().startswith("sips:")


@dataclass
class Dialog:
    """One dialog, seen from our side (§12)."""

    call_id: str
    """Call-ID of every request in the dialog."""
    local_tag: str
    """Our tag: in From of our requests, To of theirs."""
    remote_tag: str
    """The peer's tag ("" for an RFC 2543 peer that sent none)."""
    local_uri: str
    """Our address: From URI of our requests."""
    remote_uri: str
    """The peer's address: To URI of our requests."""
    remote_target: str
    """Where in-dialog requests go: the peer's Contact URI (§12.1)."""
    route_set: list[str] = field(default_factory=list)
    """Route values for our requests, in order (from Record-Route)."""
    local_cseq: int = 0
    """CSeq of our last request (0 = none sent yet)."""
    remote_cseq: int | None = None
    """CSeq of the peer's last request, None before the first."""
    secure: bool = False
    """The dialog was created over sips (§12.1.1)."""

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """The dialog a 2xx/1xx to `request` creates, with our tag `local_tag` (§12.1.1)."""
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=_tag(request.headers.get("From")),
            local_uri=_uri(request.headers.get("To")),
            remote_uri=_uri(request.headers.get("From")),
            remote_target=_contact_uri(request) or _uri(request.headers.get("From")),
            route_set=request.headers.values("Record-Route"),
            local_cseq=0,  # §12.1.1: empty; our first request uses 1
            remote_cseq=request.cseq[0],
            secure=_is_secure(request),
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog `response` (2xx, or 1xx with a To tag) to our `request` creates (§12.1.2).

        A response without Contact (a peer's bug) falls back to the Request-URI as the target.
        """
        return cls(
            call_id=request.call_id,
            local_tag=_tag(request.headers.get("From")),
            remote_tag=_tag(response.headers.get("To")),
            local_uri=_uri(request.headers.get("From")),
            remote_uri=_uri(request.headers.get("To")),
            remote_target=_contact_uri(response) or request.uri,
            route_set=list(reversed(response.headers.values("Record-Route"))),
            local_cseq=request.cseq[0],
            remote_cseq=None,
            secure=_is_secure(request),
        )

    @property
    def key(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag): the dialog ID (§12)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def create_request(
        self,
        method: str,
        *,
        via: str,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        max_forwards: int = 70,
    ) -> Request:
        """The next request in this dialog (§12.2.1.1); `via` carries a fresh branch.

        ACK (for a 2xx) and CANCEL reuse the CSeq number of the last request; others increment.
        """
        if method not in ("ACK", "CANCEL"):
            self.local_cseq += 1
        uri, routes = self._request_uri_and_routes()
        h = Headers()
        h.add("Via", via)
        h.add("Max-Forwards", str(max_forwards))
        for route in routes:
            h.add("Route", route)
        h.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        to_tag = f";tag={self.remote_tag}" if self.remote_tag else ""
        h.add("To", f"<{self.remote_uri}>{to_tag}")
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self.local_cseq} {method}")
        if contact is not None:
            h.add("Contact", contact if "<" in contact else f"<{contact}>")
        if content_type is not None:
            h.add("Content-Type", content_type)
        return Request(method, uri, h, body)

    def _request_uri_and_routes(self) -> tuple[str, list[str]]:
        """Loose routing if the first route has `lr`, else strict routing (§12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        first = parse_name_addr(self.route_set[0]).uri
        if parse_uri(first).has_param("lr"):
            return self.remote_target, list(self.route_set)
        # Strict router: it becomes the Request-URI and the remote target the last Route.
        return first, [*self.route_set[1:], f"<{self.remote_target}>"]

    def matches(self, request: Request) -> bool:
        """Does this incoming request belong to the dialog (§12.2.2)?

        ACK is matched without its To tag: pyVoIP puts a random one in it (docs/peers.md §1c row 3).
        """
        try:
            from_tag = _tag(request.headers.get("From"))
            to_tag = _tag(request.headers.get("To"))
        except SipSyntaxError:
            return False
        if request.call_id != self.call_id or from_tag != self.remote_tag:
            return False
        return request.method == "ACK" or to_tag == self.local_tag

    def update_remote_cseq(self, request: Request) -> bool:
        """Record the peer's CSeq; False if lower than the last one (§12.2.2: answer 500).

        ACK and CANCEL carry the CSeq of the request they refer to and are not checked.
        """
        number = request.cseq[0]
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and number < self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """A target refresh (re-INVITE, UPDATE, or their 2xx) replaces the remote target (§12.2)."""
        contact = _contact_uri(message)
        if contact is not None:
            self.remote_target = contact


def dialog_key(message: Request | Response, *, local_is_uas: bool) -> tuple[str, str, str]:
    """(Call-ID, local tag, remote tag) of a message.

    `local_is_uas`: we are the UAS for this message's transaction (we receive the request or
    send the response): our tag is then in To; otherwise (our request, its response) in From.
    """
    from_tag = _tag(message.headers.get("From"))
    to_tag = _tag(message.headers.get("To"))
    if local_is_uas:
        return (message.call_id, to_tag, from_tag)
    return (message.call_id, from_tag, to_tag)
