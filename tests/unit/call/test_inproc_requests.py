"""What the switch answers to each request, in process (RFC 3261 §8.2 order, then digest, then the
route and the SDP): the checks the mutation run found reached only by the subprocess tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pbxcore.sip.message import Request, Response
from pbxcore.testing.inproc import InProcSwitch, Phone, new_token, settle
from tests.unit.call.inproc_site import USERS, answered, call, closed_cdr, events, start

ROUTES = {"1": "w.sh", "5": "w.sh\npublic = false"}  # 1: public; 5: for registered users only


@pytest.fixture
async def sw(tmp_path: Path) -> AsyncIterator[InProcSwitch]:
    switch = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'}, ROUTES)
    yield switch
    await switch.stop()


async def ask(phone: Phone, request: Request) -> Response:
    phone.send(request)
    return await phone.response(request)


def invite(phone: Phone, called: str = "1", **kw: object) -> Request:
    body = kw.pop("body", phone.sdp())
    return phone.build("INVITE", f"sip:{called}@127.0.0.1:5060", user="1001",
                       body=body, **kw)  # type: ignore[arg-type]


async def test_options_lists_what_we_allow(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    reply = await ask(phone, phone.build("OPTIONS", "sip:pbx@127.0.0.1:5060", user="1001"))
    assert reply.status == 200
    assert "REFER" in (reply.headers.get("Allow") or "")
    assert reply.headers.get("Accept") == "application/sdp"


@pytest.mark.parametrize(("method", "status"), [("FOO", 501), ("PUBLISH", 405)])
async def test_unknown_and_unsupported_methods(sw: InProcSwitch, method: str,
                                               status: int) -> None:
    phone = sw.phone("10.0.0.1")
    reply = await ask(phone, phone.build(method, "sip:pbx@127.0.0.1:5060", user="1001"))
    assert reply.status == status and "INVITE" in (reply.headers.get("Allow") or "")


async def test_a_non_sip_request_uri_is_416(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    reply = await ask(phone, phone.build("OPTIONS", "tel:+15551234", user="1001",
                                         to="sip:pbx@127.0.0.1"))
    assert reply.status == 416


async def test_an_unsupported_require_is_420_naming_it(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    reply = await ask(phone, invite(phone, headers=[("Require", "100rel, foo")]))
    assert (reply.status, reply.headers.get("Unsupported")) == (420, "100rel, foo")


async def test_a_body_that_is_not_sdp_is_415(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    request = invite(phone)
    request.headers.set("Content-Type", "text/plain")
    reply = await ask(phone, request)
    assert (reply.status, reply.headers.get("Accept")) == (415, "application/sdp")


@pytest.mark.parametrize(("accept", "status"), [("text/html", 406), ("application/*", 200),
                                                ("application/sdp;level=1", 200)])
async def test_accept_must_allow_sdp(sw: InProcSwitch, accept: str, status: int) -> None:
    phone = sw.phone("10.0.0.1")
    reply = await ask(phone, invite(phone, headers=[("Accept", accept)]))
    assert reply.status == status


@pytest.mark.parametrize("body", [b"", b"v=0\r\nm=audio 4000 RTP/AVP 18\r\n"],
                         ids=["no-offer", "no-usable-codec"])
async def test_an_invite_without_a_usable_offer_is_488(sw: InProcSwitch, body: bytes) -> None:
    phone = sw.phone("10.0.0.1")
    request = invite(phone, body=body)
    reply = await ask(phone, request)
    assert reply.status == 488 and "PCMU/PCMA" in (reply.headers.get("Warning") or "")
    assert phone.statuses(request.call_id) == [100, 488]  # 100 first (pyVoIP waits for it)
    assert await sw.running.deps.store.cdrs() == []  # no call was started


async def test_a_private_route_needs_digest_and_names_the_user(sw: InProcSwitch,
                                                               tmp_path: Path) -> None:
    phone = sw.phone("10.0.0.1")
    await phone.open_rtp()
    first = invite(phone, "5")
    phone.send(first)
    challenge = await phone.response(first)
    assert challenge.status == 401 and challenge.headers.get("WWW-Authenticate")
    assert phone.statuses(first.call_id) == [401]  # alone: pyVoIP needs it as the first answer
    phone.received.clear()
    sent, reply = await phone.send_authenticated(invite(phone, "5"), "1001", USERS["1001"])
    assert reply.status == 200
    cdr = (await sw.running.deps.store.cdrs())[0]
    assert (cdr.caller, cdr.called) == ("1001", "5")
    await settle()
    assert "incoming " in events(tmp_path)


async def test_a_wrong_password_is_challenged_again_and_no_call_starts(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    _, reply = await phone.send_authenticated(invite(phone, "5"), "1001", "wrong")
    assert reply.status == 401
    assert await sw.running.deps.store.cdrs() == []


async def test_an_unknown_number_is_404_after_digest(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    request = invite(phone, "999")
    phone.send(request)
    assert (await phone.response(request)).status == 401  # no route: not public either
    _, reply = await phone.send_authenticated(invite(phone, "999"), "1001", USERS["1001"])
    assert reply.status == 404


async def test_register_for_a_tel_aor_is_400(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    reply = await ask(phone, phone.build("REGISTER", "sip:127.0.0.1:5060", user="1002",
                                         to="tel:1002"))
    assert reply.status == 400 and "To of a REGISTER must be a SIP URI" in reply.reason


async def test_register_reply_has_a_date_and_a_mismatched_aor_says_why(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    reply = await phone.register("1002", USERS["1002"])
    assert reply.headers.get("Date", "").endswith(" GMT")  # RFC 3261 §10.3 step 8 (clock sync)
    request = phone.build("REGISTER", "sip:127.0.0.1:5060", user="1002", to="sip:1003@127.0.0.1")
    _, reply = await phone.send_authenticated(request, "1002", USERS["1002"])
    assert (reply.status, reply.reason) == (403, "Forbidden (AOR does not match credentials)")


async def test_bye_and_info_outside_any_dialog_are_481(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    for method in ("BYE", "INFO"):
        reply = await ask(phone, phone.build(method, "sip:pbx@127.0.0.1:5060", user="1001",
                                             to_tag=new_token()))
        assert reply.status == 481, method


async def test_in_dialog_requests_find_their_call_by_tags(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    dialog = await call(phone, "1")
    await answered(dialog)
    info = dialog.in_dialog("INFO")
    assert (await phone.response(info)).status == 200
    # Same Call-ID, foreign tags: another dialog, not this call (RFC 3261 §12.2.2).
    stray = phone.build("BYE", dialog.remote_target, user="1001", call_id=dialog.call_id,
                        cseq=9, from_tag="other", to_tag="other")
    assert (await ask(phone, stray)).status == 481
    assert sw.running.switch.calls
    # pyVoIP's BYE carries a random To tag (docs/peers.md §1c): the From tag still finds the call.
    pyvoip = phone.build("BYE", dialog.remote_target, user="1001", call_id=dialog.call_id,
                         cseq=10, from_tag=dialog.from_tag, to_tag="random")
    assert (await ask(phone, pyvoip)).status == 200
    cdr = await closed_cdr(sw)
    assert cdr.hangup_by == "caller"


async def test_the_ack_is_noted_in_the_calls_trace(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.1")
    dialog = await call(phone, "1")
    await answered(dialog)
    bye = dialog.in_dialog("BYE")
    assert (await phone.response(bye)).status == 200
    cdr = await closed_cdr(sw)
    trace = await sw.running.deps.store.trace(cdr.call_id)
    assert {"received": "ACK"} in [e.data for e in trace if e.kind == "sip"]


async def test_cancel_before_answer_is_487_and_abandoned(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"r.sh": 'incoming) echo ring; echo "wait 120";;'}, {"1": "r.sh"})
    try:
        phone = sw.phone("10.0.0.1")
        dialog = await call(phone, "1")
        await phone.response(dialog.invite, final=False, status=180)  # as the call arrives
        await phone.response(dialog.invite, final=False, status=180)  # the script's `ring`
        cancel = phone.cancel(dialog.invite)
        assert (await ask(phone, cancel)).status == 200
        assert (await phone.response(dialog.invite)).status == 487
        cdr = await closed_cdr(sw)
        assert (cdr.disposition, cdr.hangup_by, cdr.hangup_code) == ("abandoned", "caller", 487)
        assert events(tmp_path) == ["incoming ", "hangup caller"]
    finally:
        await sw.stop()
