"""Callbacks that keep the place, end to end: a real `pbx run`, the test UAC as the caller (an
extension, so the callback rings its phone), a SIPp agent and a SIPp UAS as the customer's phone.

The caller presses the queue's callback key (RFC 4733 DTMF) while nobody is logged in, and hangs
up once told `callback`; `pbx queues` shows the callback waiting in its place; when the agent logs
in, its phone rings first with the callback screen pop, then the customer's phone is called and
the two are bridged.  Checked as an operator would: the script's events, `pbx queues --json`,
`pbx journal --json`, `pbx cdr --json`, and the agent's INVITE (SIPp's messages.log).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.switch_harness import SwitchProcess, free_port, start_switch, write_config
from tests.integration.uac import Uac
from tests.peers.helpers import cdrs, closed_cdr, poll, read_lines, write_script
from tests.peers.switching_helpers import USERS, Callees, SippCallee, wait_rtp

pytestmark = pytest.mark.peer

SCRIPT = r"""
printf '%s|%s|%s|%s\n' "$PBX_EVENT" "$PBX_RESULT" "$PBX_QUEUE" "$PBX_CALLBACK_NUMBER" \
    >> "EVENTS/$PBX_CALL_ID.events"
case "$PBX_EVENT" in
incoming) echo "queue backline";;
queue) echo "log left the queue: $PBX_RESULT"; echo hangup;;
esac
"""


def setup(tmp_path: Path) -> tuple[Path, Path, int, Path]:
    """(switch dir, config, port, events dir) of a switch with the `backline` queue."""
    events = tmp_path / "events"
    events.mkdir()
    script = write_script(tmp_path / "queue.sh", SCRIPT.replace("EVENTS", str(events)),
                          "/bin/sh")
    routes = f"""
        [[routes]]
        match = "^79$"
        script = "{script}"
        public = true

        [[queues]]
        name = "backline"
        members = ["1002"]
        ring_timeout = 10
        callback_key = "*"
        callback_retries = 1
        callback_retry_delay = 1
        """
    dir = tmp_path / "switch"
    dir.mkdir()
    port = free_port()
    config = write_config(dir, port=port, routes=textwrap.dedent(routes), users=USERS)
    return dir, config, port, events


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[SwitchProcess, Path]]:
    dir, config, port, events = setup(tmp_path)
    sw = start_switch(dir, config, port)
    try:
        yield sw, events
    finally:
        sw.stop()
        print(f"--- pbx run log ({sw.log})\n{sw.log_text()[-20000:]}")


def ask_callback(sw: SwitchProcess, ext: str) -> str:
    """Extension `ext` calls the queue and presses the callback key; its call id."""
    uac = Uac(sw.port, user=ext, password=USERS[ext])  # the customer, from its desk phone
    try:
        resp = uac.call("79")
        assert resp is not None and resp.status == 200, resp
        wait_rtp(uac.rtp)  # the hold music says where the switch's RTP comes from
        uac.rtp.send_dtmf("*")
        assert uac.wait_bye(10) is not None  # told `callback`, the script hangs up
    finally:
        uac.close()
    return str(closed_cdr(sw, uac.call_id)["call_id"])


def pbx_json(sw: SwitchProcess, *args: str) -> Any:
    out = sw.pbx(*args, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def backline(sw: SwitchProcess) -> dict[str, Any]:
    return next(q for q in pbx_json(sw, "queues")["queues"] if q["name"] == "backline")


def test_the_callback_rings_the_agent_then_the_customer_and_bridges_them(
        env: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    sw, events = env
    call_id = ask_callback(sw, "1003")
    asked = next(c for c in cdrs(sw) if c["call_id"] == call_id)
    told = [line.split("|") for line in read_lines(events / f"{asked['call_id']}.events")]
    assert [e for e in told if e[0] == "queue"] == [["queue", "callback", "backline", "1003"]]
    assert asked["queues"][0]["outcome"] == "callback"
    waiting = backline(sw)
    assert waiting["waiting"] == 1
    assert [(c["number"], c["attempts"]) for c in waiting["callbacks"]] == [("1003", 0)]
    callback_id = waiting["callbacks"][0]["id"]

    with Callees() as callees:
        customer = callees.start(SippCallee("switching_uas_answer.xml", sw.port, "1003",
                                            tmp_path / "customer"))
        agent = callees.start(SippCallee("queue_agent.xml", sw.port, "1002", tmp_path / "agent"))
        login = sw.pbx("agent", "login", "1002", "--queue", "backline")
        assert login.returncode == 0, login.stdout + login.stderr
        assert agent.wait() == 0, agent.logs()  # answered, talked ~1.5 s, hung up
        assert customer.wait() == 0, customer.logs()  # rung, answered, got our BYE
        invite = agent.messages()
        rung = customer.messages()
    assert 'From: "[backline] callback for 1003"' in invite, invite
    assert "x-pbx-callback: 1003" in invite.lower()
    assert "INVITE sip:" in rung

    def rows() -> list[tuple[str, str]]:
        return [(r["event"], r["callid"]) for r in pbx_json(
            sw, "journal", "--queue", "backline", "--limit", "100")]

    done = poll(lambda: rows() if ("COMPLETEAGENT", callback_id) in rows() else None,
                timeout=10)
    assert done == [("ENTERQUEUE", asked["call_id"]), ("CALLBACK", asked["call_id"]),
                    ("CALLBACKREQUEST", callback_id), ("AGENTLOGIN", "NONE"),
                    ("CALLBACKATTEMPT", callback_id), ("CALLBACKCONNECT", callback_id),
                    ("COMPLETEAGENT", callback_id)]
    assert backline(sw)["callbacks"] == []
    attempt = poll(lambda: next((c for c in cdrs(sw) if c["call_id"] == f"{callback_id}-1"
                                 and c["end"]), None), timeout=10)
    assert attempt["disposition"] == "answered" and attempt["called"] == "1003"
    assert attempt["caller"] == "1002" and attempt["hangup_by"] == "caller"  # the agent
    assert attempt["vars"]["direction"] == "outbound"
    assert [(leg["target"], leg["role"]) for leg in attempt["legs"]] == [
        ("1002", "agent"), ("1003", "customer")]


def test_callbacks_survive_a_restart_in_order_and_a_busy_customer_is_retried_then_failed(
        tmp_path: Path) -> None:
    dir, config, port, _ = setup(tmp_path)
    sw = start_switch(dir, config, port)
    try:
        first, second = ask_callback(sw, "1003"), ask_callback(sw, "1004")
        ids = [c["id"] for c in backline(sw)["callbacks"]]
        assert [c["number"] for c in backline(sw)["callbacks"]] == ["1003", "1004"]
    finally:
        sw.stop()  # a clean stop: SHUTDOWN rows, the callbacks stay in the store
    sw = start_switch(dir, config, port)
    try:
        assert [(c["id"], c["number"]) for c in backline(sw)["callbacks"]] == list(
            zip(ids, ["1003", "1004"], strict=True))
        with Callees() as callees:
            busy = callees.start(SippCallee("switching_uas_busy.xml", sw.port, "1003",
                                            tmp_path / "busy", calls=2))
            answers = callees.start(SippCallee("switching_uas_answer.xml", sw.port, "1004",
                                               tmp_path / "answers"))
            agent = callees.start(SippCallee("queue_agent.xml", sw.port, "1002",
                                             tmp_path / "agent", calls=3))
            assert sw.pbx("agent", "login", "1002").returncode == 0
            assert busy.wait() == 0, busy.logs()
            assert answers.wait() == 0, answers.logs()
            assert agent.wait() == 0, agent.logs()

        def rows(cb: str) -> list[tuple[str, str]]:
            return [(r["event"], r["data3"] if r["event"] == "CALLBACKFAILED" else r["data2"])
                    for r in pbx_json(sw, "journal", "--queue", "backline", "--limit", "200")
                    if r["callid"] == cb]

        failed = poll(lambda: rows(ids[0]) if rows(ids[0])[-1][0] == "CALLBACKFAILED"
                      else None, timeout=15)
        # The first customer was busy twice (one retry after the back-off), then given up.
        assert failed == [("CALLBACKREQUEST", first), ("SHUTDOWN", "1"),
                          ("CALLBACKATTEMPT", "1"), ("CALLBACKATTEMPT", "2"),
                          ("CALLBACKFAILED", "busy")]
        served = poll(lambda: rows(ids[1]) if rows(ids[1])[-1][0].startswith("COMPLETE")
                      else None, timeout=15)
        assert [e for e, _ in served] == ["CALLBACKREQUEST", "SHUTDOWN", "CALLBACKATTEMPT",
                                          "CALLBACKCONNECT", "COMPLETEAGENT"]
        assert served[0][1] == second
        assert backline(sw)["callbacks"] == []
    finally:
        sw.stop()
        print(f"--- pbx run log ({sw.log})\n{sw.log_text()[-20000:]}")


def test_a_number_the_allow_list_refuses_is_not_called_back_and_the_caller_waits_on(
        env: tuple[SwitchProcess, Path]) -> None:
    sw, events = env
    uac = Uac(sw.port, user="5550999")  # no trunk routes it: not an allowed callback number
    try:
        resp = uac.call("79")
        assert resp is not None and resp.status == 200, resp
        wait_rtp(uac.rtp)
        uac.rtp.send_dtmf("*")
        poll(lambda: "callback to 5550999 refused by callback_allow" in sw.log_text(),
             timeout=5)
        still = backline(sw)  # still in the queue, and no callback
        assert still["waiting"] == 1 and still["callbacks"] == []
        assert uac.bye() is not None
    finally:
        uac.close()
    cdr = closed_cdr(sw, uac.call_id)
    rows = [r["event"] for r in pbx_json(sw, "journal", "--queue", "backline")
            if r["callid"] == cdr["call_id"]]
    assert rows == ["ENTERQUEUE", "ABANDON"]
    assert not (events / f"{cdr['call_id']}.events").exists() or all(
        not line.startswith("queue|") for line in read_lines(events / f"{cdr['call_id']}.events"))

