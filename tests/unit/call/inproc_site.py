"""A site for the in-process call-layer tests: a config, real shell scripts, a started switch on
an in-memory SIP wire with a fake clock (pbxcore/testing/inproc.py), and a caller's dialog."""

from __future__ import annotations

import socket
import stat
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from pbxcore.config import load_config
from pbxcore.sip.message import Request, Response
from pbxcore.store.base import Cdr
from pbxcore.testing.inproc import InProcSwitch, Phone, new_token, settle, start_inproc

REPO = Path(__file__).resolve().parents[3]
USERS = {"1001": "pw1001", "1002": "pw1002", "1003": "pw1003"}
SIP = ("127.0.0.1", 5060)  # in memory: nothing is bound


def free_rtp_range(size: int = 40) -> tuple[int, int]:
    """An even-aligned range of real UDP ports whose even ports were all free a moment ago
    (media is real, and other switches on this machine may hold ports anywhere)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            base = (s.getsockname()[1] // 2) * 2
        if base + size < 65000 and all(_bindable(p) for p in range(base, base + size, 2)):
            return base, base + size - 1
    raise RuntimeError("no free RTP range")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def write_script(dir: Path, name: str, cases: str) -> Path:
    """A /bin/sh script: `cases` are `case "$PBX_EVENT" in` arms; every event is logged."""
    path = dir / name
    path.write_text('#!/bin/sh\necho "$PBX_EVENT $PBX_RESULT" >> "$(dirname "$0")/events.log"\n'
                    f'case "$PBX_EVENT" in\n{textwrap.dedent(cases)}\nesac\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def write_config(dir: Path, routes: dict[str, str], extra: str = "") -> Path:
    """`routes`: called number → script file name under dir/scripts, optionally followed by
    more TOML lines of that route after a newline (public unless they say `public = false`)."""
    low, high = free_rtp_range()
    users = "".join(f'[[users]]\nextension = "{e}"\npassword = "{p}"\n' for e, p in USERS.items())
    route_tables = ""
    for num, spec in routes.items():
        name, _, more = spec.partition("\n")
        public = "" if "public" in more else "public = true\n"
        route_tables += (f'[[routes]]\nmatch = "^{num}$"\nscript = "{dir / "scripts" / name}"\n'
                         f"{public}{more}\n")
    text = textwrap.dedent(f"""\
        [sip]
        listen = ["udp:{SIP[0]}:{SIP[1]}", "tcp:{SIP[0]}:{SIP[1]}"]
        realm = "pbxcore-test"
        [media]
        rtp_ports = "{low}-{high}"
        host = "127.0.0.1"
        [paths]
        scripts = "{dir / 'scripts'}"
        sounds = "{REPO / 'sounds'}"
        recordings = "var/recordings"
        [store]
        dsn = "sqlite:///var/pbx.db"
        """) + extra + "\n" + users + "\n" + route_tables
    path = dir / "pbx.toml"
    path.write_text(text)
    return path


async def start(dir: Path, scripts: dict[str, str], routes: dict[str, str],
                extra: str = "") -> InProcSwitch:
    """Write `scripts` (file name → case arms) and the config, start the switch in process."""
    (dir / "scripts").mkdir(exist_ok=True)
    for name, cases in scripts.items():
        write_script(dir / "scripts", name, cases)
    return await start_inproc(load_config(write_config(dir, routes, extra)))


def events(dir: Path) -> list[str]:
    path = dir / "scripts" / "events.log"
    return path.read_text().splitlines() if path.exists() else []


@dataclass
class CallerDialog:
    """The caller's side of one INVITE: what it sent, and the dialog once answered."""

    phone: Phone
    invite: Request
    from_tag: str
    cseq: int = 1
    remote_tag: str = ""
    remote_target: str = ""
    answer: Response | None = None
    sent: list[Request] = field(default_factory=list)

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    def learn(self, response: Response) -> None:
        to = response.headers.get("To") or ""
        self.remote_tag = to.split(";tag=")[1].split(";")[0] if ";tag=" in to else ""
        contact = response.headers.get("Contact") or ""
        self.remote_target = contact.strip().lstrip("<").split(">")[0]
        self.answer = response

    def in_dialog(self, method: str, *, body: bytes = b"", cseq: int | None = None,
                  headers: list[tuple[str, str]] | None = None) -> Request:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        request = self.phone.build(method, self.remote_target, user="1001",
                                   to=self.invite.uri, call_id=self.call_id, cseq=cseq,
                                   from_tag=self.from_tag, to_tag=self.remote_tag,
                                   headers=headers, body=body)
        self.phone.send(request)
        self.sent.append(request)
        return request

    def ack(self) -> Request:
        return self.in_dialog("ACK", cseq=self.invite.cseq[0])


async def call(phone: Phone, called: str, *, user: str = "1001") -> CallerDialog:
    """Send an INVITE with an SDP offer from `phone` to `called` (public route: no auth)."""
    if not phone.rtp_port:
        await phone.open_rtp()
    tag = new_token()
    host, port = SIP
    invite = phone.build("INVITE", f"sip:{called}@{host}:{port}", user=user, from_tag=tag,
                         body=phone.sdp())
    phone.send(invite)
    return CallerDialog(phone, invite, tag)


async def answered(dialog: CallerDialog, *, ack: bool = True) -> Response:
    """Wait for the 200 OK to the INVITE; learn the dialog; ACK it unless told not to."""
    response = await dialog.phone.response(dialog.invite)
    assert response.status == 200, f"expected 200, got {response.status} {response.reason}"
    dialog.learn(response)
    if ack:
        dialog.ack()
    await settle()
    return response


async def closed_cdr(sw: InProcSwitch, timeout_rounds: int = 400) -> Cdr:
    """The single CDR, once closed (bounded: polls between loop passes, real time ≤ ~4 s)."""
    import asyncio

    store = sw.running.deps.store
    for _ in range(timeout_rounds):
        cdrs = await store.cdrs()
        if cdrs and cdrs[0].end is not None:
            return cdrs[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no closed CDR: {await store.cdrs()}")
