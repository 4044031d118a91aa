"""Message-waiting lamps on the wire: a phone (raw UDP socket, digest auth) SUBSCRIBEs to
message-summary, gets 200 with Expires and an immediate NOTIFY, a NOTIFY with Messages-Waiting:
yes when a caller leaves a message in a box it owns, and a terminating NOTIFY when it
un-SUBSCRIBEs; a registered phone whose box is `mwi = "unsolicited"` gets NOTIFY unasked."""

from __future__ import annotations

import json
import secrets
import socket
import stat
import time
from collections.abc import Iterator

import pytest

from pbxcore.rtp.tones import tone
from pbxcore.sip.digest import authorization_for
from pbxcore.sip.message import Headers, Request, Response, parse_message
from pbxcore.sip.mwi import parse_summary
from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac

SCRIPT = """case "$PBX_EVENT" in
  incoming) echo "voicemail $BOX greeting=beep beep=no max=5";;
  voicemail) echo hangup;;
esac
"""
PASSWORDS = {"1001": "secret1001", "1002": "secret1002"}


class Phone:
    """A SIP phone reduced to what MWI needs: requests with digest, NOTIFYs answered 200."""

    def __init__(self, port: int, user: str) -> None:
        self.port, self.user = port, user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.call_id = secrets.token_hex(8) + "@phone"
        self.tag = secrets.token_hex(4)
        self.to_tag: str | None = None
        self.cseq = 0
        self.notifies: list[Request] = []
        self.notify_status = 200  # what this phone answers to a NOTIFY

    @property
    def local(self) -> int:
        return self.sock.getsockname()[1]

    def _request(self, method: str, uri: str, extra: list[tuple[str, str]],
                 auth: str | None) -> Request:
        self.cseq += 1
        to_tag = f";tag={self.to_tag}" if self.to_tag else ""
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.local};branch=z9hG4bK{secrets.token_hex(8)}"),
            ("From", f"<sip:{self.user}@127.0.0.1>;tag={self.tag}"),
            ("To", f"<sip:{self.user}@127.0.0.1>{to_tag}"),
            ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} {method}"),
            ("Contact", f"<sip:{self.user}@127.0.0.1:{self.local}>"), ("Max-Forwards", "70"),
            *extra]
        if auth:
            headers.append(("Authorization", auth))
        return Request(method, uri, Headers(headers), b"")

    def send(self, method: str, extra: list[tuple[str, str]]) -> Response:
        uri = f"sip:{self.user}@127.0.0.1:{self.port}"
        req = self._request(method, uri, extra, None)
        self.sock.sendto(req.to_bytes(), ("127.0.0.1", self.port))
        resp = self.response()
        if resp.status == 401:
            challenge = resp.headers.get_all("WWW-Authenticate")[0]
            auth = authorization_for(challenge, method=method, uri=uri, username=self.user,
                                     password=PASSWORDS[self.user], cnonce=secrets.token_hex(4))
            req = self._request(method, uri, extra, auth)
            self.sock.sendto(req.to_bytes(), ("127.0.0.1", self.port))
            resp = self.response()
        return resp

    def recv(self, timeout: float) -> Request | Response | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                msg = parse_message(self.sock.recv(65535))
            except TimeoutError:
                return None
            if isinstance(msg, Request):
                self.answer(msg, self.notify_status if msg.method == "NOTIFY" else 200)
                if msg.method == "NOTIFY":
                    self.notifies.append(msg)
            return msg
        return None

    def response(self, timeout: float = 5.0) -> Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(deadline - time.monotonic())
            if isinstance(msg, Response) and msg.status >= 200:
                return msg
        raise AssertionError("no final response")

    def notify(self, timeout: float = 10.0) -> Request:
        deadline = time.monotonic() + timeout
        seen = len(self.notifies)
        while len(self.notifies) == seen and time.monotonic() < deadline:
            self.recv(deadline - time.monotonic())
        assert len(self.notifies) > seen, "no NOTIFY"
        return self.notifies[seen]

    def answer(self, req: Request, status: int = 200) -> None:
        lines = [f"SIP/2.0 {status} {'OK' if status == 200 else 'Gone'}"]
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            lines += [f"{name}: {v}" for v in req.headers.get_all(name)]
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), ("127.0.0.1", self.port))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    dir = tmp_path_factory.mktemp("mwi")
    s = dir / "s"
    s.mkdir()
    (s / "vm.sh").write_text("#!/bin/sh\n" + SCRIPT)
    (s / "vm.sh").chmod((s / "vm.sh").stat().st_mode | stat.S_IEXEC)
    port = free_port()
    routes = "".join(f"""
[[routes]]
name = "vm-{box}"
match = "^{number}$"
script = "{s / 'vm.sh'}"
public = true
env = {{ BOX = "{box}" }}
""" for number, box in (("600", "sales"), ("602", "1002")))
    extra = """
[[voicemail]]
box = "sales"
owners = ["1001"]

[[voicemail]]
box = "1002"
mwi = "unsolicited"
"""
    config = write_config(dir, port=port, routes=routes, scripts=s, extra=extra,
                          users=PASSWORDS)
    proc = start_switch(dir, config, port)
    yield proc
    proc.stop()


def leave_message(sw: SwitchProcess, number: str) -> None:
    uac = Uac(sw.port, user="0441234567")
    try:
        assert (resp := uac.call(number)) is not None and resp.status == 200
        uac.rtp.drain(0.6)
        uac.rtp.send_audio(tone(700, 1500, amplitude=8000))
        uac.rtp.send_dtmf("#")
        assert uac.wait_bye(10) is not None
    finally:
        uac.close()


def summary(notify: Request) -> dict[str, str]:
    assert notify.headers.get("Event") == "message-summary"
    assert notify.headers.get("Content-Type") == "application/simple-message-summary"
    return parse_summary(notify.body)


def test_subscribe_notify_on_message_and_unsubscribe(sw: SwitchProcess) -> None:
    phone = Phone(sw.port, "1001")
    try:
        ok = phone.send("SUBSCRIBE", [("Event", "message-summary"), ("Expires", "600"),
                                      ("Accept", "application/simple-message-summary")])
        assert ok.status == 200 and ok.headers.get("Expires") == "600"
        to = ok.headers.get("To") or ""
        assert ";tag=" in to
        phone.to_tag = to.split(";tag=")[1].split(";")[0]
        first = phone.notify()
        assert first.headers.get("Subscription-State", "").startswith("active;expires=")
        assert summary(first)["messages-waiting"] == "no"
        assert summary(first)["voice-message"] == "0/0 (0/0)"
        assert summary(first)["message-account"].startswith("sip:*97@")

        leave_message(sw, "600")
        lit = phone.notify()
        assert summary(lit)["messages-waiting"] == "yes"
        assert summary(lit)["voice-message"] == "1/0 (0/0)"
        assert lit.call_id == phone.call_id  # in the subscription's dialog

        # `pbx voicemail mark` in another process: the switch is told, the lamp follows.
        listed = sw.pbx("voicemail", "list", "sales", "--json")
        message_id = json.loads(listed.stdout)[0]["id"]
        marked = sw.pbx("voicemail", "mark", "sales", str(message_id), "heard")
        assert marked.returncode == 0, marked.stderr
        dark = phone.notify()
        assert summary(dark)["messages-waiting"] == "no"
        assert summary(dark)["voice-message"] == "0/1 (0/0)"

        # A refresh gets the state again; an un-SUBSCRIBE a terminating NOTIFY.
        again = phone.send("SUBSCRIBE", [("Event", "message-summary"), ("Expires", "600")])
        assert again.status == 200
        assert summary(phone.notify())["voice-message"] == "0/1 (0/0)"
        bye = phone.send("SUBSCRIBE", [("Event", "message-summary"), ("Expires", "0")])
        assert bye.status == 200 and bye.headers.get("Expires") == "0"
        last = phone.notify()
        assert (last.headers.get("Subscription-State") or "").startswith("terminated")
    finally:
        phone.close()


def test_wrong_event_package_and_too_brief(sw: SwitchProcess) -> None:
    phone = Phone(sw.port, "1001")
    try:
        bad = phone.send("SUBSCRIBE", [("Event", "presence"), ("Expires", "600")])
        assert bad.status == 489 and bad.headers.get("Allow-Events") == "message-summary"
        brief = phone.send("SUBSCRIBE", [("Event", "message-summary"), ("Expires", "5")])
        assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
    finally:
        phone.close()


def test_unsolicited_notify_to_registered_owner(sw: SwitchProcess) -> None:
    phone = Phone(sw.port, "1002")
    try:
        reg = phone.send("REGISTER", [("Expires", "600")])
        assert reg.status == 200
        leave_message(sw, "602")
        lit = phone.notify()
        assert summary(lit)["messages-waiting"] == "yes"
        assert lit.headers.get("Subscription-State") == "active"
        assert lit.uri == f"sip:1002@127.0.0.1:{phone.local}"  # the registered Contact
    finally:
        phone.close()


def subscribed(sw: SwitchProcess, user: str) -> Phone:
    phone = Phone(sw.port, user)
    ok = phone.send("SUBSCRIBE", [("Event", "message-summary"), ("Expires", "600")])
    assert ok.status == 200
    phone.to_tag = (ok.headers.get("To") or "").split(";tag=")[1].split(";")[0]
    return phone


def test_notify_answered_481_ends_the_subscription(sw: SwitchProcess) -> None:
    gone = Phone(sw.port, "1001")
    gone.notify_status = 481  # "no such subscription here": the phone restarted, say
    ok = gone.send("SUBSCRIBE", [("Event", "message-summary"), ("Expires", "600")])
    assert ok.status == 200
    gone.notify()  # the immediate NOTIFY, answered 481
    live = subscribed(sw, "1001")
    try:
        live.notify()
        leave_message(sw, "600")
        live.notify()  # the change went out: to this phone, and no more to the other
        assert gone.recv(0.5) is None
    finally:
        gone.close()
        live.close()
