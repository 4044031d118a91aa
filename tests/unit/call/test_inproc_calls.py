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
        assert reply.status == 403  # the script owns the caller's side: no transfer by the caller
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
