"""A registered test phone (UAS) on its own thread: REGISTER with digest, then answer, reject or
let ring the INVITEs the switch sends, exchange RTP, and record what happened."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from pbxcore.rtp.g711 import ulaw_encode
from pbxcore.rtp.packet import RtpPacket
from pbxcore.rtp.tones import tone
from pbxcore.sip.digest import authorization_for
from pbxcore.sip.message import Request, Response, parse_message
from pbxcore.sip.sdp import parse_sdp
from tests.integration.uac import RtpSink


@dataclass
class Seen:
    """What the phone saw, for assertions."""

    invites: list[Request] = field(default_factory=list)
    cancels: int = 0
    byes_received: int = 0
    acks: int = 0
    answered: bool = False
    notifies: list[bytes] = field(default_factory=list)  # sipfrag bodies of NOTIFYs
    responses: list[int] = field(default_factory=list)  # statuses of answers to our requests


class Phone(threading.Thread):
    """behaviour: "answer" | "busy" | "decline" | "ring" (never answers) | "ring-busy" (rings
    `ring` seconds, then 486) | "answer-bye" (answers, then hangs up after `talk` seconds)."""

    def __init__(self, switch_port: int, ext: str, password: str, behaviour: str = "answer", *,
                 ring: float = 0.2, talk: float = 1.0, send_tone: int = 0) -> None:
        super().__init__(daemon=True, name=f"phone-{ext}")
        self.switch_port = switch_port
        self.ext = ext
        self.password = password
        self.behaviour = behaviour
        self.ring_time = ring
        self.talk = talk
        self.send_tone = send_tone  # Hz of a tone to send while answered (0: none)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.rtp = RtpSink.open()
        self.seen = Seen()
        self.stop_flag = threading.Event()
        self.dialog: tuple[Request, str] | None = None  # INVITE, our To tag
        self.remote_media: tuple[str, int] | None = None
        self._answer_at: float | None = None
        self._busy_at: float | None = None
        self._bye_at: float | None = None
        self._tone_seq = 0

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    # -- registration (before the thread starts) -------------------------------------------

    def register(self, timeout: float = 5.0, expires: int = 300,
                 user_agent: str | None = None, extra: tuple[str, ...] = ()) -> int:
        call_id = secrets.token_hex(8)
        auth = None
        for cseq in (1, 2):
            lines = [
                f"REGISTER sip:127.0.0.1:{self.switch_port} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
                f"From: <sip:{self.ext}@127.0.0.1>;tag={secrets.token_hex(4)}",
                f"To: <sip:{self.ext}@127.0.0.1>", f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER", f"Contact: <sip:{self.ext}@127.0.0.1:{self.port}>",
                f"Expires: {expires}", "Max-Forwards: 70",
            ]
            if user_agent is not None:
                lines.append(f"User-Agent: {user_agent}")
            lines.extend(extra)  # e.g. the Path a proxy would add (RFC 3327)
            if auth:
                lines.append(f"Authorization: {auth}")
            self.sock.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                             ("127.0.0.1", self.switch_port))
            resp = self._wait_response(timeout)
            if resp.status != 401:
                return resp.status
            auth = authorization_for(resp.headers.get_all("WWW-Authenticate")[0],
                                     method="REGISTER", uri=f"sip:127.0.0.1:{self.switch_port}",
                                     username=self.ext, password=self.password,
                                     cnonce=secrets.token_hex(4))
        return 401

    def _wait_response(self, timeout: float) -> Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = parse_message(self.sock.recv(65535))
            except TimeoutError:
                continue
            if isinstance(msg, Response) and msg.status >= 200:
                return msg
        raise AssertionError("no response to REGISTER")

    # -- the phone ----------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                data = b""
            if data:
                msg = parse_message(data)
                if isinstance(msg, Request):
                    self._request(msg, addr)
                else:
                    self.seen.responses.append(msg.status)
                    if msg.cseq[1] == "INVITE" and msg.status == 200:
                        self._in_dialog("ACK", cseq=msg.cseq[0])
            self._timers()
            self.rtp.drain()

    def _request(self, req: Request, addr: tuple[str, int]) -> None:
        if req.method == "INVITE":
            self.seen.invites.append(req)
            tag = secrets.token_hex(4)
            self.dialog = (req, tag)
            sdp = parse_sdp(req.body)
            media = sdp.media[0]
            self.remote_media = (media.connection or sdp.connection or "127.0.0.1", media.port)
            self._reply(req, 100, addr)
            if self.behaviour == "busy":
                self._reply(req, 486, addr, tag)
            elif self.behaviour == "decline":
                self._reply(req, 603, addr, tag)
            else:
                self._reply(req, 180, addr, tag)
                if self.behaviour == "ring-busy":
                    self._busy_at = time.monotonic() + self.ring_time
                elif self.behaviour != "ring":
                    self._answer_at = time.monotonic() + self.ring_time
            self._addr = addr
        elif req.method == "ACK":
            self.seen.acks += 1
        elif req.method == "CANCEL":
            self.seen.cancels += 1
            self._reply(req, 200, addr)
            if self.dialog is not None and not self.seen.answered:
                self._reply(self.dialog[0], 487, addr, self.dialog[1])
                self._answer_at = None
        elif req.method == "NOTIFY":
            self.seen.notifies.append(req.body)
            self._reply(req, 200, addr)
        elif req.method == "BYE":
            self.seen.byes_received += 1
            self._reply(req, 200, addr)
            self._bye_at = None
            self.seen.answered = False

    def _timers(self) -> None:
        now = time.monotonic()
        if self._busy_at is not None and now >= self._busy_at and self.dialog is not None:
            self._busy_at = None
            self._reply(self.dialog[0], 486, self._addr, self.dialog[1])
        if self._answer_at is not None and now >= self._answer_at and self.dialog is not None:
            self._answer_at = None
            req, tag = self.dialog
            sdp = (
                "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.rtp.port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
            ).encode()
            self._reply(req, 200, self._addr, tag, body=sdp)
            self.seen.answered = True
            self.rtp.remote = self.remote_media
            if self.behaviour == "answer-bye":
                self._bye_at = now + self.talk
        if self.seen.answered and self.send_tone and self.rtp.remote:
            self._send_tone_frame()
        if self._bye_at is not None and now >= self._bye_at:
            self._bye_at = None
            self.hangup()

    def _send_tone_frame(self) -> None:
        # One 20 ms frame per loop pass at most; the loop runs about every 50 ms or on input.
        if time.monotonic() - getattr(self, "_last_tone", 0.0) < 0.02:
            return
        self._last_tone = time.monotonic()
        start = self._tone_seq * 160
        pcm = tone(self.send_tone, 20, amplitude=8000)
        pkt = RtpPacket(0, (1000 + self._tone_seq) & 0xFFFF, start, 0x1234, ulaw_encode(pcm))
        assert self.rtp.remote is not None
        self.rtp.sock.sendto(pkt.to_bytes(), self.rtp.remote)
        self._tone_seq += 1

    def hangup(self) -> None:
        self._in_dialog("BYE")
        self.seen.answered = False

    def refer(self, target: str) -> None:
        """Blind transfer the caller to `target` (RFC 3515)."""
        self._in_dialog("REFER", [f"Refer-To: <sip:{target}@127.0.0.1>",
                                  f"Referred-By: <sip:{self.ext}@127.0.0.1>"])

    def hold(self, on: bool = True) -> None:
        """re-INVITE with a=sendonly (hold, RFC 3264 §8.4) or a=sendrecv (resume)."""
        sdp = (
            "v=0\r\no=- 2 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp.port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            f"a={'sendonly' if on else 'sendrecv'}\r\n"
        ).encode()
        self._in_dialog("INVITE", ["Content-Type: application/sdp"], sdp)

    def _in_dialog(self, method: str, extra: list[str] | None = None, body: bytes = b"", *,
                   cseq: int | None = None) -> None:
        assert self.dialog is not None
        req, tag = self.dialog
        if cseq is None:
            self._cseq = getattr(self, "_cseq", 0) + 1
            cseq = self._cseq
        lines = [
            f"{method} {_contact_uri(req)} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
            f"From: {req.headers.get('To')};tag={tag}", f"To: {req.headers.get('From')}",
            f"Call-ID: {req.call_id}", f"CSeq: {cseq} {method}", "Max-Forwards: 70",
            f"Contact: <sip:{self.ext}@127.0.0.1:{self.port}>", *(extra or []),
        ]
        head = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n"
        self.sock.sendto(head.encode() + body, self._addr)

    def _reply(self, req: Request, status: int, addr: tuple[str, int], tag: str | None = None,
               body: bytes = b"") -> None:
        reasons = {100: "Trying", 180: "Ringing", 200: "OK", 486: "Busy Here", 487: "Terminated",
                   603: "Decline"}
        lines = [f"SIP/2.0 {status} {reasons.get(status, 'X')}"]
        for name in ("Via", "From"):
            lines += [f"{name}: {v}" for v in req.headers.get_all(name)]
        to = req.headers.get("To") or ""
        lines.append(f"To: {to};tag={tag}" if tag and ";tag=" not in to else f"To: {to}")
        lines += [f"Call-ID: {req.call_id}", f"CSeq: {req.headers.get('CSeq')}",
                  f"Contact: <sip:{self.ext}@127.0.0.1:{self.port}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        data = ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        self.sock.sendto(data, addr)

    def close(self) -> None:
        """Stop, and remove the registration as a phone does when switched off."""
        self.stop_flag.set()
        if self.is_alive():
            self.join(2)
        try:
            self.register(timeout=2, expires=0)
        except AssertionError:
            pass  # the switch is gone already
        self.sock.close()
        self.rtp.close()


def _contact_uri(req: Request) -> str:
    contact = req.headers.get("Contact") or ""
    return contact.split("<", 1)[-1].split(">", 1)[0] if "<" in contact else contact.split(";")[0]
