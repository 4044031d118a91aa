"""REGISTER in process (RFC 3261 §10.3): digest first, 423 below Min-Expires, `Contact: *` removes
every binding only with Expires 0, and bindings expire on the (fake) clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pbxcore.sip.message import Response
from pbxcore.testing.inproc import InProcSwitch, Phone
from tests.unit.call.inproc_site import USERS, start


@pytest.fixture
async def sw(tmp_path: Path) -> AsyncIterator[InProcSwitch]:
    switch = await start(tmp_path, {"w.sh": "incoming) echo hangup;;"}, {"1": "w.sh"})
    yield switch
    await switch.stop()


def contacts(response: Response) -> list[str]:
    return [v for v in response.headers.values("Contact") if v]


async def fetch(phone: Phone, user: str = "1002") -> Response:
    """A REGISTER without Contact: the registrar lists the bindings (§10.2.3)."""
    host, port = phone.switch.address
    request = phone.build("REGISTER", f"sip:{host}:{port}", user=user, to=f"sip:{user}@{host}")
    request.headers.remove("Contact")
    _, reply = await phone.send_authenticated(request, user, USERS[user])
    return reply


async def test_register_needs_digest_then_binds(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    host, port = sw.address
    request = phone.build("REGISTER", f"sip:{host}:{port}", user="1002", to=f"sip:1002@{host}")
    phone.send(request)
    challenge = await phone.response(request)
    assert challenge.status == 401 and challenge.headers.get("WWW-Authenticate")
    reply = await phone.register("1002", USERS["1002"], expires=600)
    assert reply.status == 200
    assert contacts(reply) == ["<sip:1002@10.0.0.2:5060;transport=udp>;expires=600"]


async def test_register_with_a_wrong_password_is_challenged_again(sw: InProcSwitch) -> None:
    reply = await sw.phone("10.0.0.2").register("1002", "wrong")
    assert reply.status == 401
    assert sw.running.switch.registrar.bindings("1002") == []


async def test_register_for_another_users_aor_is_403(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    host, port = sw.address
    request = phone.build("REGISTER", f"sip:{host}:{port}", user="1002", to=f"sip:1003@{host}")
    _, reply = await phone.send_authenticated(request, "1002", USERS["1002"])
    assert reply.status == 403


@pytest.mark.parametrize("expires", [1, 30, 59])
async def test_too_brief_a_registration_gets_423_with_min_expires(sw: InProcSwitch,
                                                                  expires: int) -> None:
    phone = sw.phone("10.0.0.2")
    reply = await phone.register("1002", USERS["1002"], expires=expires)
    assert reply.status == 423  # RFC 3261 §10.3 step 7
    assert reply.headers.get("Min-Expires") == "60"
    assert sw.running.switch.registrar.bindings("1002") == []


async def test_expires_param_below_the_minimum_gets_423_too(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    reply = await phone.register("1002", USERS["1002"], expires=None,
                                 contact="<sip:1002@10.0.0.2:5060>;expires=10")
    assert (reply.status, reply.headers.get("Min-Expires")) == (423, "60")


async def test_the_minimum_itself_is_accepted_and_a_long_one_capped(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    reply = await phone.register("1002", USERS["1002"], expires=60)
    assert reply.status == 200 and contacts(reply)[0].endswith(";expires=60")
    reply = await phone.register("1002", USERS["1002"], expires=100000)
    assert reply.status == 200 and contacts(reply)[0].endswith(";expires=7200")


async def test_contact_star_with_expires_0_removes_every_binding(sw: InProcSwitch) -> None:
    desk, soft = sw.phone("10.0.0.2"), sw.phone("10.0.0.3")
    assert (await desk.register("1002", USERS["1002"])).status == 200
    assert (await soft.register("1002", USERS["1002"])).status == 200
    assert len(contacts(await fetch(desk))) == 2
    reply = await desk.register("1002", USERS["1002"], expires=0, contact="*")
    assert reply.status == 200
    assert contacts(await fetch(desk)) == []
    assert sw.running.switch.registrar.bindings("1002") == []


@pytest.mark.parametrize("expires", [None, 3600])
async def test_contact_star_without_expires_0_is_400_and_keeps_bindings(
        sw: InProcSwitch, expires: int | None) -> None:
    phone = sw.phone("10.0.0.2")
    assert (await phone.register("1002", USERS["1002"])).status == 200
    reply = await phone.register("1002", USERS["1002"], expires=expires, contact="*")
    assert reply.status == 400  # RFC 3261 §10.2.2: `*` only with Expires: 0
    assert reply.reason == "Bad Request (Contact: * needs Expires: 0)"
    assert len(contacts(await fetch(phone))) == 1


async def test_contact_star_mixed_with_a_contact_is_400(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    reply = await phone.register("1002", USERS["1002"], expires=0,
                                 contact="*, <sip:1002@10.0.0.2>")
    assert (reply.status, reply.reason) == (400, "Bad Request (Contact: * mixed with other contacts)")


async def test_expires_0_removes_only_that_contact(sw: InProcSwitch) -> None:
    desk, soft = sw.phone("10.0.0.2"), sw.phone("10.0.0.3")
    await desk.register("1002", USERS["1002"])
    await soft.register("1002", USERS["1002"])
    reply = await soft.register("1002", USERS["1002"], expires=0)
    assert reply.status == 200
    assert [c.split(";")[0] for c in contacts(reply)] == ["<sip:1002@10.0.0.2:5060"]


async def test_bindings_expire_on_the_clock(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    assert (await phone.register("1002", USERS["1002"], expires=120)).status == 200
    await sw.advance(119.0)
    assert contacts(await fetch(phone))[0].endswith(";expires=1")
    await sw.advance(0.5)
    assert contacts(await fetch(phone))[0].endswith(";expires=0")  # half a second left
    await sw.advance(0.5)
    assert contacts(await fetch(phone)) == []  # gone at its deadline, not a moment after


async def test_without_any_expires_a_binding_lasts_an_hour(sw: InProcSwitch) -> None:
    reply = await sw.phone("10.0.0.2").register("1002", USERS["1002"], expires=None)
    assert reply.status == 200  # RFC 3261 §10.2.1: the registrar's default
    assert contacts(reply) == ["<sip:1002@10.0.0.2:5060;transport=udp>;expires=3600"]


async def test_removing_what_is_not_there_is_fine(sw: InProcSwitch) -> None:
    phone = sw.phone("10.0.0.2")
    assert (await phone.register("1002", USERS["1002"], expires=0, contact="*")).status == 200
    assert (await phone.register("1002", USERS["1002"], expires=0)).status == 200
    assert contacts(await fetch(phone)) == []
