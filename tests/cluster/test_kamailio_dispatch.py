"""Several pbxcore nodes behind Kamailio (issue 13), all real: Kamailio 5 with the shipped
examples/cluster/kamailio.cfg (dispatcher, OPTIONS probing, Path), two `pbx run` nodes sharing
one PostgreSQL schema, raw SIP callers and a phone.  Checks: new calls spread round-robin over
both nodes (CDR node ids in the shared store); a phone registered through Kamailio is stored with
its Path and rung from either node through the proxy; after kill -9 of one node every new call is
served by the other (failover on timeout, then the probe keeps the dead node out)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.integration.store.conftest import PG_DSN
from tests.integration.switch_harness import (
    REPO,
    SwitchProcess,
    free_port,
    options_ping,
    start_switch,
    write_config,
)
from tests.integration.uac import Uac
from tests.integration.uas import Phone

pytestmark = pytest.mark.cluster
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
USERS = {"1001": "pw1001", "1002": "pw1002"}
SECRET = secrets.token_hex(16)  # [cluster] secret: one nonce key on both nodes


@dataclass
class Cluster:
    kamailio: subprocess.Popen[bytes]
    kamailio_port: int
    kamailio_log: Path
    nodes: dict[str, SwitchProcess]
    dsn: str

    def cdr_nodes(self) -> dict[str, int]:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute("SELECT node, count(*) FROM cdr GROUP BY node").fetchall()
        return {str(node): int(n) for node, n in rows}

    def registrations(self) -> list[tuple[str, str, str]]:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute("SELECT extension, node, path FROM registrations").fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]


def _script(dir: Path) -> Path:
    path = dir / "route.sh"
    # 1 (and 3, for authenticated users): rejected at once (a CDR per call, no media);
    # 2: rings the registered phone 1002.
    path.write_text('#!/bin/sh\ncase "$PBX_CALLED:$PBX_EVENT" in\n'
                    '1:incoming|3:incoming) echo "reject busy";;\n'
                    '2:incoming) echo "dial 1002 timeout=5";;\n'
                    '*:dial) echo "reject busy";;\nesac\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    schema = f"pbx_cluster_{secrets.token_hex(6)}"
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_DSN else "?"
    dsn = f"{PG_DSN}{sep}options=-csearch_path%3D{schema}"
    nodes: dict[str, SwitchProcess] = {}
    kamailio: subprocess.Popen[bytes] | None = None
    try:
        scripts = tmp_path / "s"
        scripts.mkdir()
        script = _script(scripts)
        routes = (f'[[routes]]\nmatch = "^[12]$"\nscript = "{script}"\npublic = true\n'
                  f'[[routes]]\nmatch = "^3$"\nscript = "{script}"\n')
        for name in ("node-a", "node-b"):
            dir = tmp_path / name
            dir.mkdir()
            port = free_port()
            config = write_config(dir, port=port, routes=routes, scripts=scripts, users=USERS,
                                  extra=f'[node]\nid = "{name}"\n[cluster]\n'
                                        'nodes = ["node-a", "node-b"]\n'
                                        f'secret = "{SECRET}"\n')
            text = config.read_text().replace('dsn = "sqlite:///var/pbx.db"', f'dsn = "{dsn}"')
            config.write_text(text)
            nodes[name] = start_switch(dir, config, port)
        kport = free_port()
        kdir = tmp_path / "kamailio"
        kdir.mkdir()
        (kdir / "dispatcher.list").write_text(
            "".join(f"1 sip:127.0.0.1:{n.port}\n" for n in nodes.values()))
        klog = kdir / "kamailio.log"
        with open(klog, "wb") as out:
            kamailio = subprocess.Popen(
                [KAMAILIO, "-DD", "-E", "-f", str(REPO / "examples/cluster/kamailio.cfg"),
                 "-Y", str(kdir), "-m", "32", "-M", "8",
                 "-A", f"LISTEN=udp:127.0.0.1:{kport}",
                 "-A", f'DISPATCHER_LIST="{kdir / "dispatcher.list"}"', "-A", "PING_INTERVAL=1"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while not options_ping(kport, timeout=0.3):  # relayed to a node, answered 200
            if kamailio.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kamailio not answering:\n{klog.read_text(errors='replace')}")
        yield Cluster(kamailio, kport, klog, nodes, dsn)
    finally:
        if kamailio is not None and kamailio.poll() is None:
            os.killpg(kamailio.pid, signal.SIGTERM)
            try:
                kamailio.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(kamailio.pid, signal.SIGKILL)
                kamailio.wait(5)
        for node in nodes.values():
            node.stop()
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _call(port: int, called: str) -> int:
    caller = Uac(port)
    try:
        resp = caller.call(called, timeout=10)
        return resp.status if resp is not None else 0
    finally:
        caller.close()


def _wait_cdrs(cluster: Cluster, total: int) -> dict[str, int]:
    deadline = time.monotonic() + 10
    counts = cluster.cdr_nodes()
    while sum(counts.values()) < total and time.monotonic() < deadline:
        time.sleep(0.1)
        counts = cluster.cdr_nodes()
    return counts


def test_calls_spread_phones_reach_any_node_and_a_dead_node_gets_no_calls(
        cluster: Cluster) -> None:
    kport = cluster.kamailio_port
    assert [_call(kport, "1") for _ in range(6)] == [486] * 6
    spread = _wait_cdrs(cluster, 6)
    assert set(spread) == {"node-a", "node-b"}, spread  # round-robin: both nodes took calls
    assert sum(spread.values()) == 6

    # A phone registers through Kamailio: stored once in the shared store, with our Path.
    phone = Phone(kport, "1002", USERS["1002"], "answer")
    try:
        assert phone.register() == 200
        ((ext, _node, path),) = cluster.registrations()
        assert ext == "1002" and path.startswith(f"sip:127.0.0.1:{kport};lr")
        for node in cluster.nodes.values():  # either node lists it, with its Path
            out = node.pbx("registrations", "--json")
            (row,) = json.loads(out.stdout)["registrations"]
            assert (row["extension"], row["path"]) == ("1002", [path]), out.stdout
        phone.start()
        # Two calls: round-robin puts them on different nodes; both ring the phone via the proxy.
        for _ in range(2):
            caller = Uac(kport)
            try:
                resp = caller.call("2", timeout=10)
                assert resp is not None and resp.status == 200
                assert (bye := caller.bye()) is not None and bye.status == 200
            finally:
                caller.close()
        assert len(phone.seen.invites) == 2
    finally:
        phone.close()
    dialled = _wait_cdrs(cluster, 8)
    assert all(dialled[n] > spread[n] for n in spread), (spread, dialled)  # each node rang it

    # An authenticated call: round-robin sends the INVITE answering node X's 401 to node Y,
    # which accepts X's nonce because both sign with [cluster] secret.
    caller = Uac(kport, user="1001", password=USERS["1001"])
    try:
        resp = caller.call("3", timeout=10)
        assert resp is not None and resp.status == 486, resp
    finally:
        caller.close()
    _wait_cdrs(cluster, 9)

    # kill -9 node-b: every new call is served by node-a.
    dead = cluster.nodes["node-b"]
    os.killpg(dead.proc.pid, signal.SIGKILL)
    dead.proc.wait(10)
    before = _wait_cdrs(cluster, 9)
    assert [_call(kport, "1") for _ in range(4)] == [486] * 4
    after = _wait_cdrs(cluster, sum(before.values()) + 4)
    assert after["node-a"] == before["node-a"] + 4, (before, after)
    assert after["node-b"] == before["node-b"]
