"""The inbound call in process: what the caller's phone sees for `ring`, a hang-up before answer,
a reject after answer, a missing ACK (the fake clock runs Timer G/H) and a REFER from the caller.

Each test runs the real switch (pbxcore/testing/inproc.py) with real /bin/sh scripts; only the SIP
wire is in memory and the SIP clock is stepped by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.sip.message import Request
from pbxcore.testing.inproc import InProcSwitch, settle
from tests.unit.call.inproc_site import answered, call, closed_cdr, events, start


async def test_ring_sends_180_again(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"r.sh": 'incoming) echo ring; echo "wait 0.05"; echo "reject busy";;'},
                     {"1": "r.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        final = await caller.response(dialog.invite)
        # One 180 from the switch as the call arrives (engine), one for the `ring` action.
        assert caller.statuses(dialog.call_id) == [100, 180, 180, 486]
        assert final.status == 486
    finally:
        await sw.stop()


@pytest.mark.parametrize("actions", ["echo hangup", "echo 'log nothing else'"],
                         ids=["hangup", "list-runs-off-its-end"])
async def test_hangup_before_answer_is_480(tmp_path: Path, actions: str) -> None:
    sw = await start(tmp_path, {"h.sh": f"incoming) {actions};;"}, {"1": "h.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        final = await caller.response(dialog.invite)
        assert final.status == 480  # "unavailable", not 486 "busy"
        cdr = await closed_cdr(sw)
        assert (cdr.disposition, cdr.hangup_by, cdr.hangup_code) == ("rejected", "script", 480)
    finally:
        await sw.stop()


async def test_reject_after_answer_hangs_up_with_bye(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"a.sh": 'incoming) echo answer; echo "reject busy";;'},
                     {"1": "a.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        await answered(dialog)
        bye = await caller.request("BYE", call_id=dialog.call_id)
        caller.send(caller.reply(bye, 200))
        # Nothing to reject once answered (protocol.md `reject`): the 200 stays the only final.
        assert caller.statuses(dialog.call_id) == [100, 180, 200]
        cdr = await closed_cdr(sw)
        assert (cdr.disposition, cdr.hangup_by) == ("answered", "script")
    finally:
        await sw.stop()


async def _answered_without_ack(sw: InProcSwitch) -> tuple[Request, int]:
    caller = sw.phone("10.0.0.1")
    dialog = await call(caller, "1")
    await answered(dialog, ack=False)
    return dialog.invite, len(caller.received)


async def test_missing_ack_ends_the_call_with_bye_after_64_t1(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        await answered(dialog, ack=False)
        await sw.advance(31.0)  # Timer G doubles to T2: the 200 is resent, no BYE yet
        resent = caller.statuses(dialog.call_id).count(200) - 1
        assert resent >= 5
        assert not [r for r in caller.received if isinstance(r.message, Request)]
        await sw.advance(2.0)  # past 64*T1 = 32 s (RFC 3261 §13.3.1.4)
        bye = await caller.request("BYE", call_id=dialog.call_id)
        caller.send(caller.reply(bye, 200))
        # In the dialog (RFC 3261 §12.2.1.1): to the caller's Contact, our tags, no body.
        assert bye.uri == dialog.invite.headers.get("Contact", "").strip("<>")
        assert f";tag={dialog.from_tag}" in (bye.headers.get("To") or "")
        assert f";tag={dialog.remote_tag}" in (bye.headers.get("From") or "")
        assert bye.headers.get("Contact") == dialog.remote_target.join("<>")
        assert (bye.body, bye.headers.get("Content-Length")) == (b"", "0")
        assert bye.cseq[1] == "BYE"
        cdr = await closed_cdr(sw)
        assert (cdr.hangup_by, cdr.hangup_code) == ("switch", 408)
        assert cdr.hangup_cause == "no ACK for 200 OK"
        assert events(tmp_path) == ["incoming ", "hangup switch"]
    finally:
        await sw.stop()


async def test_acked_call_gets_no_bye_when_the_timers_run_out(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        await answered(dialog)
        await sw.advance(40.0)
        assert caller.statuses(dialog.call_id) == [100, 180, 200]  # ACKed: not resent
        assert not [r for r in caller.received if isinstance(r.message, Request)]
        bye = dialog.in_dialog("BYE")
        assert (await caller.response(bye)).status == 200
        cdr = await closed_cdr(sw)
        assert cdr.hangup_by == "caller"
    finally:
        await sw.stop()


async def test_refer_from_the_caller_is_refused_and_the_call_goes_on(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        await answered(dialog)
        refer = dialog.in_dialog("REFER", headers=[("Refer-To", "<sip:1002@127.0.0.1>")])
        reply = await caller.response(refer)
        # The script owns the caller's side: no transfer by the caller, and the reason says so.
        assert (reply.status, reply.reason) == (403, "Forbidden (transfer by the caller)")
        await settle()
        assert sw.running.switch.calls, "the call must survive the refused REFER"
        bye = dialog.in_dialog("BYE")
        assert (await caller.response(bye)).status == 200
        cdr = await closed_cdr(sw)
        assert (cdr.disposition, cdr.hangup_by) == ("answered", "caller")
        assert not [r for r in caller.received
                    if isinstance(r.message, Request) and r.message.method == "NOTIFY"]
    finally:
        await sw.stop()


async def test_refer_outside_any_dialog_is_481(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        refer = caller.build("REFER", "sip:pbx@127.0.0.1:5060", user="1001", to_tag="nope",
                             headers=[("Refer-To", "<sip:1002@127.0.0.1>")])
        caller.send(refer)
        assert (await caller.response(refer)).status == 481
    finally:
        await sw.stop()


def origin(sdp: bytes) -> list[str]:
    """The o= line's fields: username, session id, version, nettype, addrtype, address."""
    line = next(x for x in sdp.decode().splitlines() if x.startswith("o="))
    return line[2:].split()


def audio_port(sdp: bytes) -> int:
    return int(next(x for x in sdp.decode().splitlines() if x.startswith("m=audio")).split()[1])


async def test_reinvite_is_answered_in_the_dialog_from_the_same_media(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        first = await answered(dialog)
        versions = []
        for n, body in enumerate([caller.sdp(version=2), b""]):  # a new offer; no offer (§14.2)
            reinvite = dialog.in_dialog("INVITE", body=body)
            reply = await caller.response(reinvite)
            assert reply.status == 200
            assert f";tag={dialog.remote_tag}" in (reply.headers.get("To") or "")
            assert reply.headers.get("Contact") == first.headers.get("Contact")
            assert reply.headers.get("Content-Type") == "application/sdp"
            assert audio_port(reply.body) == audio_port(first.body)
            # RFC 3264 §8: the same o= line as before, the version one higher each time.
            assert origin(reply.body)[:2] == origin(first.body)[:2], n
            versions.append(int(origin(reply.body)[2]))
            dialog.in_dialog("ACK", cseq=reinvite.cseq[0])
        first_version = int(origin(first.body)[2])
        assert versions == [first_version + 1, first_version + 2]
        bye = dialog.in_dialog("BYE")
        assert (await caller.response(bye)).status == 200
    finally:
        await sw.stop()


async def test_reinvite_without_a_usable_codec_is_488_and_the_call_goes_on(
        tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        await answered(dialog)
        g729 = caller.sdp(version=2).replace(b"RTP/AVP 0 101", b"RTP/AVP 18").replace(
            b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:18 G729/8000")
        reinvite = dialog.in_dialog("INVITE", body=g729)
        assert (await caller.response(reinvite)).status == 488
        await settle()
        assert sw.running.switch.calls
        bye = dialog.in_dialog("BYE")
        assert (await caller.response(bye)).status == 200
        assert (await closed_cdr(sw)).hangup_by == "caller"
    finally:
        await sw.stop()


async def test_reinvite_outside_any_dialog_or_before_answer_is_481(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo ring; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        stray = caller.build("INVITE", "sip:1@127.0.0.1:5060", user="1001", to_tag="unknown",
                             body=caller.sdp())
        caller.send(stray)
        assert (await caller.response(stray)).status == 481
        dialog = await call(caller, "1")
        ringing = await caller.response(dialog.invite, final=False, status=180)
        dialog.learn(ringing)  # the early dialog's To tag: not answered, nothing to change
        dialog.remote_target = dialog.invite.uri
        early = dialog.in_dialog("INVITE", body=caller.sdp(version=2))
        assert (await caller.response(early)).status == 481
    finally:
        await sw.stop()


@pytest.mark.parametrize("acked", [True, False])
async def test_a_rejection_is_resent_until_its_ack(tmp_path: Path, acked: bool) -> None:
    sw = await start(tmp_path, {"b.sh": 'incoming) echo "reject busy";;'}, {"1": "b.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        busy = await caller.response(dialog.invite)
        if acked:  # RFC 3261 §17.1.1.3: same branch, the 486's To tag
            ack = caller.build("ACK", dialog.invite.uri, user="1001", call_id=dialog.call_id,
                               from_tag=dialog.from_tag, to_tag=busy.headers.get("To", "")
                               .split(";tag=")[1])
            ack.headers.set("Via", dialog.invite.headers.get("Via") or "")
            caller.send(ack)
            await settle()
        await sw.advance(10.0)
        resent = caller.statuses(dialog.call_id).count(486) - 1
        assert (resent == 0) if acked else (resent >= 3)  # Timer G until the ACK, §17.2.1
    finally:
        await sw.stop()


async def test_the_200_ok_lists_what_we_allow(tmp_path: Path) -> None:
    sw = await start(tmp_path, {"w.sh": 'incoming) echo answer; echo "wait 120";;'},
                     {"1": "w.sh"})
    try:
        caller = sw.phone("10.0.0.1")
        dialog = await call(caller, "1")
        ok = await answered(dialog)
        assert {"INVITE", "ACK", "BYE", "CANCEL", "REFER"} <= {
            m.strip() for m in (ok.headers.get("Allow") or "").split(",")}
        bye = dialog.in_dialog("BYE")
        assert (await caller.response(bye)).status == 200
    finally:
        await sw.stop()
