"""Hypothesis strategies for hostile SIP and SDP text, shared by the SDP and the TU fuzz tests.

Numbers are where the parser was weak (issue 9 items 1, 2): besides plain values they come as
4,301+ digit strings, with leading zeros, signed, with '_', and as non-ASCII digits that pass
`str.isdigit()` ('²') or that `int()` quietly converts ('٣', '１').
"""

from __future__ import annotations

from hypothesis import strategies as st

HOSTILE_NUMBERS = ["9" * 4301, "0" * 4400 + "1", "\u00b2", "\u0663", "\uff11", "+5", "-1", "1_0",
                   "0x1f", "", " 7", "65536", "4294967296", "2147483648", "128", "256"]


def numbers(low: int = 0, high: int = 70000) -> st.SearchStrategy[str]:
    """The text of a numeric field: mostly a plausible value, often a hostile one."""
    return st.one_of(
        st.integers(low, high).map(str),
        st.integers(low, high).map(lambda n: "000" + str(n)),
        st.sampled_from(HOSTILE_NUMBERS),
        st.text(alphabet="0123456789\u00b2\u0663", min_size=1, max_size=6),
    )


#: Header-value text without line ends (a CR/LF would be a framing case, not a TU case).  Lone
#: surrogates U+DC80-U+DCFF are how the parser carries octets that are not UTF-8 (surrogateescape):
#: they go on the wire as the raw bytes 0x80-0xFF (issue 9 item 1: a nonce with \xff).
header_text = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
        st.sampled_from([chr(c) for c in range(0xDC80, 0xDD00)]),
    ),
    max_size=40,
)

_ENCODINGS = ["PCMU", "PCMA", "pcmu", "telephone-event", "opus", "G729", "", "PCMU\u00b2"]


@st.composite
def sdp_bodies(draw: st.DrawFn) -> bytes:
    """An SDP body: the usual shape with hostile numbers, attributes and odd lines."""
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-"]
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0",
                                           "c=IN IP6 ::1", "c=IN", "c=IN IP4"])))
    lines.append("t=0 0")
    for _ in range(draw(st.integers(0, 3))):
        # Weighted towards what negotiation reads (audio over RTP/AVP on a usable port), so the
        # hostile numbers reach the code that converts them.
        media = draw(st.sampled_from(["audio", "audio", "audio", "video", "x"]))
        port = draw(st.one_of(st.integers(1, 65535).map(str), numbers(0, 70000)))
        if draw(st.integers(0, 5)) == 0:
            port += "/" + draw(numbers(0, 10))
        proto = draw(st.sampled_from(["RTP/AVP", "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "udp"]))
        fmts = draw(st.lists(st.one_of(st.sampled_from(["0", "8", "101", "\u00b2"]),
                                       numbers(0, 130)), min_size=0, max_size=4))
        lines.append(" ".join([f"m={media}", port, proto, *fmts]).rstrip())
        for _ in range(draw(st.integers(0, 4))):
            pt = draw(st.one_of(st.sampled_from(["0", "101", "\u00b2"]), numbers(0, 130)))
            kind = draw(st.integers(0, 4))
            if kind == 0:
                enc = draw(st.sampled_from(_ENCODINGS))
                rate = draw(numbers(0, 96000))
                extra = "/" + draw(numbers(0, 3)) if draw(st.booleans()) else ""
                lines.append(f"a=rtpmap:{pt} {enc}/{rate}{extra}")
            elif kind == 1:
                lines.append(f"a=fmtp:{pt} {draw(header_text)}")
            elif kind == 2:
                lines.append(f"a=ptime:{draw(numbers(0, 1000))}")
            elif kind == 3:
                lines.append("a=" + draw(st.sampled_from(
                    ["sendrecv", "sendonly", "recvonly", "inactive", "x-odd"])))
            else:
                lines.append("c=IN IP4 " + draw(st.sampled_from(["127.0.0.1", "0.0.0.0", ""])))
    if draw(st.integers(0, 6)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(header_text))  # a junk line
    return (eol.join(lines) + eol).encode("utf-8", "surrogateescape")
