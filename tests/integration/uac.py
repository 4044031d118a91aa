"""A small blocking SIP UAC over UDP for integration tests: INVITE (answering a 401 with
digest), ACK, BYE, CANCEL, and an RTP socket that records what arrives and sends DTMF or
audio.  Built on pbxcore's own parser (tested on its own) and independent of the switch."""

from __future__ import annotations

import secrets
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field

from pbxcore.rtp.dtmf import dtmf_packets
from pbxcore.rtp.g711 import ulaw_decode, ulaw_encode
from pbxcore.rtp.packet import RtpPacket, parse_rtp
from pbxcore.sip.address import parse_name_addr
from pbxcore.sip.digest import authorization_for
from pbxcore.sip.message import Headers, Request, Response, parse_message, split_list


@dataclass
class RtpSink:
    """An RTP socket that collects every packet the switch sends us."""

    sock: socket.socket
    packets: list[RtpPacket] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    remote: tuple[str, int] | None = None
    seq: int = 1000
    ts: int = 0
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))

    @classmethod
    def open(cls) -> RtpSink:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        return cls(s)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def drain(self, seconds: float = 0.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                data, addr = self.sock.recvfrom(2048)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.005)
                continue
            self.remote = addr
            self.packets.append(parse_rtp(data))
            self.arrivals.append(time.monotonic())

    def audio(self) -> bytes:
        """The PCMU audio received so far, decoded to 16-bit PCM."""
        return ulaw_decode(b"".join(p.payload for p in self.packets if p.payload_type == 0))

    def send_dtmf(self, digits: str, pt: int = 101) -> None:
        assert self.remote is not None, "no RTP received yet, so no address to send to"
        for digit in digits:
            for pkt in dtmf_packets(digit, pt=pt, ssrc=self.ssrc, seq=self.seq,
                                    timestamp=self.ts, duration_ms=100):
                self.sock.sendto(pkt.to_bytes(), self.remote)
                self.seq = (pkt.sequence + 1) & 0xFFFF
                time.sleep(0.02)
                self.drain()
            self.ts += 1600
            self.drain(0.08)

    def send_audio(self, pcm16: bytes) -> None:
        """Send PCM as PCMU packets every 20 ms (160 samples each)."""
        assert self.remote is not None
        payload = ulaw_encode(pcm16)
        for i in range(0, len(payload), 160):
            pkt = RtpPacket(0, self.seq, self.ts, self.ssrc, payload[i:i + 160])
            self.sock.sendto(pkt.to_bytes(), self.remote)
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts += 160
            self.drain()
            time.sleep(0.02)

    def close(self) -> None:
        self.sock.close()


def rms(pcm16: bytes) -> float:
    n = len(pcm16) // 2
    if not n:
        return 0.0
    samples = struct.unpack(f"<{n}h", pcm16[: n * 2])
    return (sum(s * s for s in samples) / n) ** 0.5


class Uac:
    """One caller: a SIP socket plus an RTP sink."""

    def __init__(self, port: int, *, user: str = "1001", password: str | None = None,
                 display: str | None = None) -> None:
        self.port = port
        self.user = user
        self.password = password
        self.display = display
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.rtp = RtpSink.open()
        self.call_id = uuid.uuid4().hex + "@test"
        self.from_tag = secrets.token_hex(4)
        self.cseq = 0
        self.to_header = ""
        self.invite: Request | None = None
        self.received: list[Request | Response] = []

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def _send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def _via(self) -> str:
        return f"SIP/2.0/UDP 127.0.0.1:{self.local_port};branch=z9hG4bK{secrets.token_hex(8)};rport"

    def sdp(self) -> bytes:
        return (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp.port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
        ).encode("utf-8", "surrogateescape")  # From may carry raw bytes

    def build_invite(self, called: str, auth: str | None = None) -> Request:
        self.cseq += 1
        name = f'"{self.display}" ' if self.display is not None else ""
        headers = [
            ("Via", self._via()),
            ("From", f"{name}<sip:{self.user}@127.0.0.1>;tag={self.from_tag}"),
            ("To", f"<sip:{called}@127.0.0.1:{self.port}>"),
            ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} INVITE"),
            ("Contact", f"<sip:{self.user}@127.0.0.1:{self.local_port}>"),
            ("Max-Forwards", "70"), ("Content-Type", "application/sdp"),
        ]
        if auth:
            headers.append(("Authorization", auth))
        return Request("INVITE", f"sip:{called}@127.0.0.1:{self.port}", Headers(headers),
                       self.sdp())

    def recv(self, timeout: float = 5.0) -> Request | Response | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, min(0.05, deadline - time.monotonic())))
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                self.rtp.drain()
                continue
            if data[:1] in (b"\x80", b"\x81", b"\x90", b"\xa0"):
                # RTP (version 2) still flowing from an earlier test's call to a port the
                # kernel has since given to this SIP socket: not ours, not SIP.
                continue
            msg = parse_message(data)
            self.received.append(msg)
            return msg
        return None

    def final(self, timeout: float = 5.0) -> Response | None:
        """Wait for a final response to our INVITE, answering BYEs/requests meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(deadline - time.monotonic())
            if isinstance(msg, Response) and msg.status >= 200:
                return msg
        return None

    def call(self, called: str, timeout: float = 10.0) -> Response | None:
        """INVITE, answering one 401 challenge; ACK the final response; return it."""
        invite = self.build_invite(called)
        self._send(invite.to_bytes())
        resp = self.final(timeout)
        if resp is not None and resp.status == 401 and self.password is not None:
            self.ack(resp, invite)
            challenge = resp.headers.get_all("WWW-Authenticate")[0]
            auth = authorization_for(challenge, method="INVITE", uri=invite.uri,
                                     username=self.user, password=self.password,
                                     cnonce=secrets.token_hex(4))
            invite = self.build_invite(called, auth)
            self._send(invite.to_bytes())
            resp = self.final(timeout)
        self.invite = invite
        if resp is not None:
            self.ack(resp, invite)
        return resp

    def start_invite(self, called: str) -> Request:
        """Send an INVITE without waiting (for CANCEL tests)."""
        invite = self.build_invite(called)
        self.invite = invite
        self._send(invite.to_bytes())
        return invite

    def ack(self, resp: Response, invite: Request) -> None:
        self.to_header = resp.headers.get("To") or ""
        via = invite.headers.get("Via") if resp.status >= 300 else self._via()
        if resp.status < 300:
            # RFC 3261 §12.1.2: the route set is the 2xx's Record-Route, reversed (a proxy in
            # front, e.g. Kamailio, keeps itself in the dialog's path that way).
            self.route_set = [r for v in reversed(resp.headers.get_all("Record-Route"))
                              for r in reversed(split_list(v))]
            contact = resp.headers.get("Contact")
            # Behind a proxy the request goes to the remote target (§12.2.1.1); without one the
            # switch is both, and the INVITE's URI is kept as older tests expect.
            self.target = (parse_name_addr(contact).uri if contact and self.route_set
                           else invite.uri)
        data = (
            f"ACK {self.target if resp.status < 300 else invite.uri} SIP/2.0\r\nVia: {via}\r\n"
            f"{self._routes(resp.status)}"
            f"From: {invite.headers.get('From')}\r\nTo: {self.to_header}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {invite.cseq[0]} ACK\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode("utf-8", "surrogateescape")  # From may carry raw bytes
        self._send(data)

    def _routes(self, status: int) -> str:
        """Route lines of in-dialog requests (none for the ACK of a failure: same hop)."""
        route_set = getattr(self, "route_set", []) if status < 300 else []
        return "".join(f"Route: {r}\r\n" for r in route_set)

    def cancel(self) -> None:
        assert self.invite is not None
        inv = self.invite
        data = (
            f"CANCEL {inv.uri} SIP/2.0\r\nVia: {inv.headers.get('Via')}\r\n"
            f"From: {inv.headers.get('From')}\r\nTo: {inv.headers.get('To')}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {inv.cseq[0]} CANCEL\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode("utf-8", "surrogateescape")  # From may carry raw bytes
        self._send(data)

    def bye(self, timeout: float = 5.0) -> Response | None:
        assert self.invite is not None
        self.cseq += 1
        data = (
            f"BYE {getattr(self, 'target', self.invite.uri)} SIP/2.0\r\nVia: {self._via()}\r\n"
            f"{self._routes(200)}"
            f"From: {self.invite.headers.get('From')}\r\nTo: {self.to_header}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} BYE\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode("utf-8", "surrogateescape")  # From may carry raw bytes
        self._send(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(deadline - time.monotonic())
            if isinstance(msg, Response) and msg.cseq[1] == "BYE":
                return msg
        return None

    def wait_bye(self, timeout: float = 10.0) -> Request | None:
        """Wait for the switch's BYE (collecting RTP meanwhile) and answer it 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(deadline - time.monotonic())
            if isinstance(msg, Request) and msg.method == "BYE":
                self.respond(msg, 200)
                return msg
        return None

    def respond(self, req: Request, status: int) -> None:
        lines = [f"SIP/2.0 {status} OK"]
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for value in req.headers.get_all(name):
                lines.append(f"{name}: {value}")
        lines.append("Content-Length: 0")
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        self.sock.close()
        self.rtp.close()
