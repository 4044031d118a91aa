"""The control protocol codec (pure): request and response lines, errors, escaping."""

from __future__ import annotations

import json

import pytest

from pbxcore.control.protocol import (
    MAX_REQUEST,
    ControlRequest,
    ProtocolError,
    decode_request,
    decode_response,
    encode_error,
    encode_request,
    encode_result,
)


def test_request_round_trip() -> None:
    line = encode_request("hangup", {"call_id": "01ABC"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == ControlRequest("hangup", {"call_id": "01ABC"})
    assert decode_request(b'{"cmd": "calls"}\n') == ControlRequest("calls", {})
    assert decode_request(b'{"cmd": "calls", "args": null}') == ControlRequest("calls", {})


@pytest.mark.parametrize(("line", "why"), [
    (b"calls\n", "not UTF-8 JSON"),
    (b"\xff\xfe\n", "not UTF-8 JSON"),
    (b"[1, 2]\n", "must be a JSON object"),
    (b'{"args": {}}\n', '"cmd"'),
    (b'{"cmd": ""}\n', '"cmd"'),
    (b'{"cmd": 3}\n', '"cmd"'),
    (b'{"cmd": "calls", "args": [1]}\n', '"args" must be an object'),
])
def test_bad_requests(line: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        decode_request(line)


def test_a_request_over_the_limit_is_refused() -> None:
    line = encode_request("x", {"pad": "a" * MAX_REQUEST})
    with pytest.raises(ProtocolError, match="longer than"):
        decode_request(line)


def test_responses() -> None:
    ok = decode_response(encode_result({"calls": []}))
    assert ok.ok and ok.result == {"calls": []}
    err = decode_response(encode_error("config_invalid", "refused", ["pbx.toml:3: bad"]))
    assert (err.ok, err.code, err.error, err.details) == (
        False, "config_invalid", "refused", ("pbx.toml:3: bad",))
    assert json.loads(encode_error("not_found", "no call")) == {
        "ok": False, "error": "no call", "code": "not_found"}
    with pytest.raises(ProtocolError):
        decode_response(b'{"result": 1}\n')
    with pytest.raises(ProtocolError):
        decode_response(b'{"ok": false, "error": 3}\n')


def test_caller_text_cannot_break_the_line_or_reach_the_terminal_raw() -> None:
    # A display name with a newline, ESC and Cyrillic: the wire stays one 7-bit line.
    name = "Eve\n\x1b[31mЁ\u202e"
    line = encode_result({"caller_name": name})
    assert line.count(b"\n") == 1 and all(b < 0x80 for b in line) and b"\x1b" not in line
    assert decode_response(line).result == {"caller_name": name}
