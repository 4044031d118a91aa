"""The registrar over the store (issue 13) and Path (RFC 3327): bindings written through in
order, loaded back after a restart with their remaining time, expired ones dropped; a REGISTER
that came through proxies keeps its Path, echoes it when the UA supports it, and requests to that
contact go to the first Path hop with the Path as Route set (RFC 3261 §16.12 loose routing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pbxcore.call.dialer import _binding_target
from pbxcore.call.registrar import Binding, Registrar
from pbxcore.sip.message import Headers, Request, SipSyntaxError
from pbxcore.sip.peer import Peer
from pbxcore.store.memory import MemoryStore

SRC = Peer("udp", "127.0.0.1", 5070)
PROXY = Peer("udp", "127.0.0.1", 5999)


class Clocks:
    """A monotonic and a wall clock moved together (a unit test of the seam between them)."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        return self.wall0 + timedelta(seconds=self.mono - 1000.0)


def register(contact: str, *, expires: int = 300, cseq: int = 1,
             extra: tuple[tuple[str, str], ...] = ()) -> Request:
    h = Headers([("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx"),
                 ("From", "<sip:1001@h>;tag=a"), ("To", "<sip:1001@h>"), ("Call-ID", "c1"),
                 ("CSeq", f"{cseq} REGISTER"), ("Contact", f"<{contact}>"),
                 ("Expires", str(expires)), *extra])
    return Request("REGISTER", "sip:h", h)


def registrar(store: MemoryStore, clocks: Clocks, node: str = "n1") -> Registrar:
    return Registrar(clocks.monotonic, store=store, node=node, wall=clocks.wall)


async def test_changes_reach_the_store_and_come_back_after_a_restart() -> None:
    store, clocks = MemoryStore(), Clocks()
    r = registrar(store, clocks)
    assert r.register("1001", register("sip:1001@10.0.0.1:5070", expires=300), SRC)[0] == 200
    assert r.register("1001", register("sip:1001@10.0.0.2:5070", expires=600), SRC)[0] == 200
    await r.flush()
    rows = await store.registrations(clocks.wall())
    assert [(x.contact, x.node, x.source_port) for x in rows] == [
        ("sip:1001@10.0.0.1:5070", "n1", 5070), ("sip:1001@10.0.0.2:5070", "n1", 5070)]
    assert rows[0].expires == clocks.wall() + timedelta(seconds=300)

    clocks.mono += 400  # the node was down 400 s: the first binding expired meanwhile
    again = registrar(store, clocks)
    assert await again.load() == 1
    (b,) = again.bindings("1001")
    assert b.contact == "sip:1001@10.0.0.2:5070" and b.source == SRC
    assert b.expires_at == pytest.approx(clocks.mono + 200)
    assert [x.contact for x in await store.registrations(clocks.wall0)] == [b.contact]  # purged


async def test_unregister_and_expiry_delete_rows() -> None:
    store, clocks = MemoryStore(), Clocks()
    r = registrar(store, clocks)
    r.register("1001", register("sip:a@h", expires=300), SRC)
    r.register("1001", register("sip:b@h", expires=60), SRC)
    r.register("1001", register("sip:a@h", expires=0, cseq=2), SRC)  # one contact away
    await r.flush()
    assert [x.contact for x in await store.registrations(clocks.wall())] == ["sip:b@h"]
    clocks.mono += 61
    assert r.bindings("1001") == []  # expired in memory: the row goes too
    await r.flush()
    assert await store.registrations(clocks.wall0) == []
    r.register("1002", register("sip:c@h"), SRC)
    star = register("*", expires=0)
    star.headers.set("Contact", "*")
    r.register("1002", star, SRC)
    await r.flush()
    assert await store.registrations(clocks.wall0) == []


async def test_refresh_sees_a_binding_another_node_stored() -> None:
    store, clocks = MemoryStore(), Clocks()
    a, b = registrar(store, clocks, "a"), registrar(store, clocks, "b")
    a.register("1001", register("sip:1001@10.0.0.9", extra=(("Path", "<sip:127.0.0.1:5999;lr>"),)),
               SRC)
    await a.flush()
    assert b.bindings("1001") == []  # not in b's memory yet
    (seen,) = await b.refresh("1001")
    assert (seen.contact, seen.path) == ("sip:1001@10.0.0.9", ("sip:127.0.0.1:5999;lr",))


async def test_refresh_all_takes_the_whole_shared_view() -> None:
    store, clocks = MemoryStore(), Clocks()
    a, b = registrar(store, clocks, "a"), registrar(store, clocks, "b")
    a.register("1001", register("sip:1001@10.0.0.9"), SRC)
    b.register("1002", register("sip:1002@10.0.0.8"), SRC)
    await a.flush()
    assert await b.refresh_all() == 2
    assert sorted(b.all()) == ["1001", "1002"]
    await store.registration_delete("1001")  # un-REGISTERed via node a meanwhile
    assert await b.refresh_all() == 1 and b.bindings("1001") == []


async def test_expiry_on_one_node_keeps_a_refresh_another_node_stored() -> None:
    store, clocks = MemoryStore(), Clocks()
    a, b = registrar(store, clocks, "a"), registrar(store, clocks, "b")
    a.register("1001", register("sip:1001@10.0.0.9", expires=60), SRC)
    await a.flush()
    await b.refresh_all()  # b's view: expires in 60 s
    a.register("1001", register("sip:1001@10.0.0.9", expires=300, cseq=2), SRC)  # via a
    await a.flush()
    clocks.mono += 61
    assert b.bindings("1001") == []  # expired in b's view ...
    await b.flush()
    (row,) = await store.registrations(clocks.wall())  # ... but a's refresh stays stored
    assert row.cseq == 2
    assert [x.contact for x in await b.refresh("1001")] == ["sip:1001@10.0.0.9"]


def test_path_is_kept_in_order_and_echoed_only_when_supported() -> None:
    r = Registrar(Clocks().monotonic)
    path = (("Path", "<sip:p1.example;lr>, <sip:p2.example;lr>"), ("Path", "<sip:p3.example;lr>"))
    status, headers = r.register("1001", register("sip:a@h", extra=path), SRC)
    assert status == 200 and not [h for h in headers if h[0] == "Path"]
    assert r.bindings("1001")[0].path == ("sip:p1.example;lr", "sip:p2.example;lr",
                                          "sip:p3.example;lr")
    status, headers = r.register("1001", register("sip:a@h", cseq=2,
                                                  extra=(*path, ("Supported", "path"))), SRC)
    assert [v for k, v in headers if k == "Path"] == [
        "<sip:p1.example;lr>", "<sip:p2.example;lr>", "<sip:p3.example;lr>"]
    r.register("1001", register("sip:a@h", cseq=3), SRC)  # a refresh without Path: direct again
    assert r.bindings("1001")[0].path == ()


def test_a_path_that_is_no_sip_uri_is_refused() -> None:
    r = Registrar(Clocks().monotonic)
    with pytest.raises(SipSyntaxError):
        r.register("1001", register("sip:a@h", extra=(("Path", "<tel:+123>"),)), SRC)


async def test_target_goes_to_the_first_path_hop_with_the_route_set() -> None:
    path = ("sip:127.0.0.1:5999;lr", "sip:10.9.9.9;lr")
    with_path = Binding("sip:1001@10.0.0.9:5060", 0.0, SRC, "c", 1, "", path)
    target = await _binding_target("1001", with_path)
    assert (target.uri, target.peer, target.route) == ("sip:1001@10.0.0.9:5060", PROXY, path)
    direct = await _binding_target("1001", Binding("sip:1001@10.0.0.9", 0.0, SRC, "c", 1))
    assert (direct.peer, direct.route) == (SRC, ())
