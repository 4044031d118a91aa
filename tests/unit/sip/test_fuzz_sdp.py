"""Hypothesis fuzzing of the SDP parser and offer/answer (issue 9 item 1, "keep it proven").

`parse_sdp` raises only `SdpError` (the switch answers 488); whatever it accepts negotiates to
nothing or to an answer with numbers a socket and an RTP header can take, and our own answer to
it parses and negotiates back to the same codec.  `PBX_FUZZ_SDP_EXAMPLES` raises the example
count (default 200) for a longer manual run.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcore.sip.sdp import SdpError, build_answer, negotiate, parse_sdp
from tests.unit.sip.strategies import sdp_bodies

EXAMPLES = int(os.environ.get("PBX_FUZZ_SDP_EXAMPLES", "200"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(sdp_bodies())
def test_sdp_parser_raises_only_sdp_error_and_answers_are_sound(body: bytes) -> None:
    try:
        offer = parse_sdp(body)
    except SdpError:
        return
    for m in offer.media:
        assert 0 <= m.port <= 65535
        assert all(0 <= pt <= 127 for pt in m.payload_types)
        assert all(0 <= pt <= 127 for pt in m.rtpmap) and all(0 <= pt <= 127 for pt in m.fmtp)
    answer = negotiate(offer)
    if answer is None:
        return  # the switch answers 488
    assert 0 < answer.remote_port <= 65535 and 0 <= answer.payload_type <= 127
    assert answer.dtmf_payload_type is None or 0 <= answer.dtmf_payload_type <= 127
    ours = build_answer(answer, local_host="127.0.0.1", local_port=20000, session_id=1,
                        version=1)
    back = negotiate(parse_sdp(ours))
    assert back is not None and back.codec == answer.codec


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=300))
def test_sdp_parser_on_any_bytes(body: bytes) -> None:
    try:
        negotiate(parse_sdp(body))
    except SdpError:
        pass
