"""SDP (RFC 8866, formerly RFC 4566) parsing and the offer/answer model (RFC 3264) for audio.

Pure. We speak G.711 (PCMU, PCMA) at 8 kHz with 20 ms packets plus RFC 4733
telephone-event on whatever dynamic payload type the offerer chose (docs/peers.md: 96 from
sipp, 101 from pyVoIP, 120 from pjsua2). `negotiate` returns None when no offered audio
stream carries a codec we support; the SIP layer answers that with 488 (RFC 3261 §13.3.1.1).

Leniency, because real peers need it: LF-only line ends, trailing blank lines, unknown
attributes and lines, static payload types 0/8 without rtpmap, c=0.0.0.0 (RFC 3264 §8.4
old-style hold, but also what pyVoIP sends when myIP is not set: never trust it alone;
the media layer latches onto the packets' source address).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pbxcore.sip.numbers import UINT32_MAX, ascii_uint, clamped_uint

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
"""RFC 3264 §5.1 direction attributes."""

_MIRROR = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_STATIC = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1)}  # RFC 3551 §6 table 4
_HOLD_ADDRESSES = ("0.0.0.0", "::")
_MAX_PT = 127  # RFC 3550 §5.1: PT is 7 bits
_MAX_PORT = 65535
_MAX_CHANNELS = 255  # RFC 8866 §6.6: "number of audio channels", no RFC bound; ours


class SdpError(ValueError):
    """The body is not parseable SDP; the SIP layer answers 400 (or 488)."""

    status = 400


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One a=rtpmap line (RFC 8866 §6.6)."""

    encoding: str
    """Encoding name as sent (compare case-insensitively)."""
    clock_rate: int
    """Timestamp clock in Hz."""
    channels: int = 1
    """Audio channels."""


@dataclass(frozen=True)
class MediaDescription:
    """One m= section."""

    media: str
    """"audio", "video", ..."""
    port: int
    """Transport port; 0 means the stream is rejected or disabled."""
    proto: str
    """Transport protocol, e.g. "RTP/AVP"."""
    formats: tuple[str, ...]
    """Format list as sent; for RTP these are payload type numbers."""
    rtpmap: Mapping[int, RtpMap] = field(default_factory=dict)
    """a=rtpmap by payload type."""
    fmtp: Mapping[int, str] = field(default_factory=dict)
    """a=fmtp parameters by payload type, unparsed."""
    connection: str | None = None
    """Media-level c= address, if any."""
    direction: str | None = None
    """Media-level direction attribute, if any."""
    attributes: tuple[tuple[str, str | None], ...] = ()
    """Every a= line as (name, value)."""

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The formats that are payload type numbers (ASCII 0-127, RFC 3551 §3); others are
        skipped like any unknown format."""
        pts = (ascii_uint(f, _MAX_PT) for f in self.formats)
        return tuple(pt for pt in pts if pt is not None)


@dataclass(frozen=True)
class SessionDescription:
    """A parsed SDP body."""

    origin: tuple[str, ...]
    """o= fields: username, sess-id, sess-version, nettype, addrtype, address."""
    session_name: str
    """s= value."""
    connection: str | None
    """Session-level c= address."""
    direction: str | None
    """Session-level direction attribute."""
    media: tuple[MediaDescription, ...]
    """m= sections in order."""
    attributes: tuple[tuple[str, str | None], ...] = ()
    """Session-level a= lines."""


@dataclass(frozen=True)
class AudioAnswer:
    """The outcome of negotiation: what this leg sends and receives."""

    codec: str
    """"PCMU" or "PCMA"."""
    payload_type: int
    """Payload type for the codec, as the offer numbered it."""
    dtmf_payload_type: int | None
    """telephone-event payload type the offer used, or None if it offered none."""
    remote_host: str
    """Where to send RTP (until symmetric RTP latches onto the real source)."""
    remote_port: int
    """Remote RTP port."""
    direction: str
    """OUR direction for the answer (the offer's, mirrored, RFC 3264 §6.1)."""
    hold: bool = False
    """Remote c= is 0.0.0.0/:: (RFC 3264 §8.4 old-style hold, or a misconfigured peer)."""
    media_index: int = 0
    """Index of the chosen m= line in the offer."""
    offer_media: tuple[tuple[str, str, str], ...] = ()
    """(media, proto, first format) of every offered m= line, to reject the others."""


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad c= line: {value!r}")
    return parts[2].split("/", 1)[0]


def _parse_rtpmap(value: str) -> tuple[int, RtpMap] | None:
    """`96 telephone-event/8000[/1]` (RFC 8866 §6.6); None for a malformed one, which only
    disables that format.  Numbers are ASCII and bounded (`numbers.py`), never bare int()."""
    fields = value.split(None, 1)
    if len(fields) != 2:
        return None
    pt_s, spec = fields
    parts = spec.strip().split("/")
    if len(parts) < 2 or not parts[0]:
        return None
    pt = ascii_uint(pt_s, _MAX_PT)
    rate = ascii_uint(parts[1], UINT32_MAX)
    channels = ascii_uint(parts[2], _MAX_CHANNELS) if len(parts) > 2 and parts[2] else 1
    if pt is None or rate is None or channels is None:
        return None
    return pt, RtpMap(parts[0], rate, channels)


class _MediaBuilder:
    def __init__(self, media: str, port: int, proto: str, formats: tuple[str, ...]) -> None:
        self.media, self.port, self.proto, self.formats = media, port, proto, formats
        self.rtpmap: dict[int, RtpMap] = {}
        self.fmtp: dict[int, str] = {}
        self.connection: str | None = None
        self.direction: str | None = None
        self.attributes: list[tuple[str, str | None]] = []

    def build(self) -> MediaDescription:
        return MediaDescription(
            self.media,
            self.port,
            self.proto,
            self.formats,
            self.rtpmap,
            self.fmtp,
            self.connection,
            self.direction,
            tuple(self.attributes),
        )


def _parse_media(value: str) -> _MediaBuilder:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line: {value[:60]!r}")
    # RFC 8866 §5.14: <port>[/<number of ports>], both 1*DIGIT (ASCII, §9).
    port_s, slash, count_s = parts[1].partition("/")
    port = clamped_uint(port_s, _MAX_PORT + 1)
    if port is None or (slash and ascii_uint(count_s, _MAX_PORT) is None):
        raise SdpError(f"bad port in m= line: {value[:60]!r}")
    if port > _MAX_PORT:
        raise SdpError(f"port out of range in m= line: {value[:60]!r}")
    return _MediaBuilder(parts[0], port, parts[2], tuple(parts[3:]))


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body; raise SdpError if it is not SDP."""
    text = body.decode("utf-8", errors="replace")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0].startswith("v="):
        raise SdpError("SDP must start with a v= line")
    origin: tuple[str, ...] = ()
    name = ""
    connection: str | None = None
    direction: str | None = None
    attributes: list[tuple[str, str | None]] = []
    media: list[_MediaBuilder] = []
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"not an SDP line: {line[:40]!r}")
        kind, value = line[0], line[2:]
        cur = media[-1] if media else None
        if kind == "m":
            media.append(_parse_media(value))
        elif kind == "o":
            origin = tuple(value.split())
        elif kind == "s":
            name = value
        elif kind == "c":
            if cur is None:
                connection = _parse_connection(value)
            else:
                cur.connection = _parse_connection(value)
        elif kind == "a":
            attr, sep, aval = value.partition(":")
            pair = (attr, aval if sep else None)
            if cur is None:
                attributes.append(pair)
                if attr in DIRECTIONS:
                    direction = attr
                continue
            cur.attributes.append(pair)
            if attr in DIRECTIONS:
                cur.direction = attr
            elif attr == "rtpmap":
                parsed = _parse_rtpmap(aval)
                if parsed is not None:
                    cur.rtpmap[parsed[0]] = parsed[1]
            elif attr == "fmtp":
                pt_s, _, params = aval.partition(" ")
                fmt_pt = ascii_uint(pt_s, _MAX_PT)  # not isdigit(): '²' passes it, int() fails
                if fmt_pt is not None:
                    cur.fmtp[fmt_pt] = params.strip()
    return SessionDescription(
        origin, name, connection, direction, tuple(m.build() for m in media), tuple(attributes)
    )


def _codec_of(m: MediaDescription, pt: int) -> RtpMap | None:
    if pt in m.rtpmap:
        return m.rtpmap[pt]
    if pt in _STATIC:
        enc, rate, ch = _STATIC[pt]
        return RtpMap(enc, rate, ch)
    return None


def negotiate(
    offer: SessionDescription, supported: tuple[str, ...] = ("PCMU", "PCMA")
) -> AudioAnswer | None:
    """Pick the first offered codec we support on the first usable audio stream.

    Returns None when nothing matches (the caller answers 488 Not Acceptable Here).
    Also usable on an SDP answer to our own offer.
    """
    wanted = {s.upper() for s in supported}
    for index, m in enumerate(offer.media):
        # RTP/AVP and RTP/AVPF only: we cannot do SRTP (SAVP) or DTLS.
        if m.media != "audio" or m.port == 0 or m.proto.upper() not in ("RTP/AVP", "RTP/AVPF"):
            continue
        codec: tuple[str, int] | None = None
        dtmf: int | None = None
        for pt in m.payload_types:
            rm = _codec_of(m, pt)
            if rm is None or rm.clock_rate != 8000:
                continue
            enc = rm.encoding.upper()
            if codec is None and enc in wanted and rm.channels == 1:
                codec = (enc, pt)
            elif dtmf is None and enc == "TELEPHONE-EVENT":
                dtmf = pt
        if codec is None:
            continue
        host = m.connection or offer.connection
        if host is None:
            continue  # RFC 8866 §5.7: c= is mandatory at one of the two levels
        direction = m.direction or offer.direction or "sendrecv"
        return AudioAnswer(
            codec=codec[0],
            payload_type=codec[1],
            dtmf_payload_type=dtmf,
            remote_host=host,
            remote_port=m.port,
            direction=_MIRROR[direction],
            hold=host in _HOLD_ADDRESSES,
            media_index=index,
            offer_media=tuple(
                (x.media, x.proto, x.formats[0] if x.formats else "0") for x in offer.media
            ),
        )
    return None


def _session_lines(local_host: str, session_id: int, version: int) -> list[str]:
    addr = f"IN {'IP6' if ':' in local_host else 'IP4'} {local_host}"
    return ["v=0", f"o=pbxcore {session_id} {version} {addr}", "s=pbxcore", f"c={addr}", "t=0 0"]


def _audio_lines(
    port: int, codecs: list[tuple[int, str]], dtmf_pt: int | None, direction: str
) -> list[str]:
    pts = [pt for pt, _ in codecs] + ([dtmf_pt] if dtmf_pt is not None else [])
    out = [f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}"]
    out += [f"a=rtpmap:{pt} {name}/8000" for pt, name in codecs]
    if dtmf_pt is not None:
        out += [f"a=rtpmap:{dtmf_pt} telephone-event/8000", f"a=fmtp:{dtmf_pt} 0-16"]
    return out + ["a=ptime:20", f"a={direction}"]


def _join(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def build_answer(
    answer: AudioAnswer, *, local_host: str, local_port: int, session_id: int, version: int
) -> bytes:
    """The SDP answer: one m= line per offered one, the non-chosen ones rejected (port 0,
    RFC 3264 §6), the chosen one with our codec and the offer's telephone-event PT."""
    lines = _session_lines(local_host, session_id, version)
    audio = _audio_lines(
        local_port,
        [(answer.payload_type, answer.codec)],
        answer.dtmf_payload_type,
        answer.direction,
    )
    offered = answer.offer_media or (("audio", "RTP/AVP", str(answer.payload_type)),)
    for i, (media, proto, fmt) in enumerate(offered):
        lines += audio if i == answer.media_index else [f"m={media} 0 {proto} {fmt}"]
    return _join(lines)


def build_offer(
    local_host: str,
    local_port: int,
    session_id: int,
    version: int,
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    dtmf_pt: int | None = 101,
) -> bytes:
    """An SDP offer for one sendrecv audio stream (RFC 3264 §5)."""
    static = {"PCMU": 0, "PCMA": 8}
    try:
        pairs = [(static[c.upper()], c.upper()) for c in codecs]
    except KeyError as e:
        raise ValueError(f"unsupported codec {e.args[0]!r}") from None
    lines = _session_lines(local_host, session_id, version)
    return _join(lines + _audio_lines(local_port, pairs, dtmf_pt, "sendrecv"))
