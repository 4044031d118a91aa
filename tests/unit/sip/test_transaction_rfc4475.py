"""RFC 4475 torture messages through the transaction layer: no crash, replies only to the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.sip.build import make_response
from pbxcore.sip.message import Request, SipSyntaxError, parse_message
from pbxcore.sip.peer import Peer
from pbxcore.sip.transaction import RequestReceived, Send, TransactionLayer

CAPTURES = Path(__file__).parent / "captures" / "rfc4475"
FILES = sorted(CAPTURES.glob("*.sip"))
SOURCE = Peer("udp", "192.0.2.77", 40123)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_torture_message_through_the_layer(path: Path) -> None:
    try:
        msg = parse_message(path.read_bytes())
    except SipSyntaxError:
        return  # rejected by the parser: the transport answers statelessly, not the layer
    layer = TransactionLayer()
    if not isinstance(msg, Request):
        assert layer.receive_response(msg, SOURCE, 0.0) == []  # bcast & co: not ours, dropped
        return
    out = layer.receive_request(msg, SOURCE, 0.0)
    for item in out:
        if isinstance(item, RequestReceived) and item.server_tx:
            out += layer.send_response(item.server_tx, make_response(item.request, 404,
                                                                     to_tag="t"), 0.1)
    while (deadline := layer.next_deadline()) is not None:
        out += layer.handle_timer(deadline)
    assert all(o.peer == SOURCE for o in out if isinstance(o, Send))
    assert layer.next_deadline() is None


def test_two_badbranch_requests_are_two_transactions() -> None:
    data = (CAPTURES / "badbranch.sip").read_bytes()
    first, second = parse_message(data), parse_message(data.replace(b"badbranch.", b"other."))
    assert isinstance(first, Request) and isinstance(second, Request)
    layer = TransactionLayer()
    a = layer.receive_request(first, SOURCE, 0.0)
    b = layer.receive_request(second, SOURCE, 0.0)
    assert isinstance(a[0], RequestReceived) and isinstance(b[0], RequestReceived)
    assert a[0].server_tx != b[0].server_tx
