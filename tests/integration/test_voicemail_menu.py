"""Listening from the phone: the owner dials the access code (*97), enters the PIN, hears the
messages and deletes one with 7; a wrong PIN three times hears nothing.  Real `pbx run`, raw
SIP/RTP caller with digest, the store read back with `pbx voicemail list --all --json`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.switch_harness import SwitchProcess
from tests.integration.uac import Uac
from tests.integration.voicemail_helpers import events, leave, listed, voicemail_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    yield from voicemail_site(tmp_path_factory)


def test_owner_listens_by_feature_code_deletes_with_7(site: SwitchProcess) -> None:
    sw = site
    leave(sw, "603", 1200)
    leave(sw, "603", 1200)
    events(sw)
    first, second = listed(sw, "1001")
    assert first["status"] == second["status"] == "new"
    owner = Uac(sw.port, user="1001", password="secret1001")
    try:
        assert (resp := owner.call("*97")) is not None and resp.status == 200
        owner.rtp.drain(0.3)
        # PIN, then 7 (delete the first message) and # (done after the second): keys are
        # kept while prompts play, as an owner who knows the menu presses ahead.
        owner.rtp.send_dtmf("4711#")
        owner.rtp.drain(4.0)
        owner.rtp.send_dtmf("7")
        owner.rtp.drain(0.5)
        owner.rtp.send_dtmf("#")
        assert owner.wait_bye(60) is not None
        heard = owner.rtp.audio()
    finally:
        owner.close()
    assert len(heard) > 16000 * 10  # prompts and both messages were played to the owner
    statuses = {m["id"]: m["status"] for m in listed(sw, "1001", "--all")}
    assert statuses[first["id"]] == "deleted" and statuses[second["id"]] == "heard"
    assert not (sw.dir / "var" / "recordings" / first["recording"]).exists()
    assert (sw.dir / "var" / "recordings" / second["recording"]).exists()


def test_wrong_pin_hears_nothing(site: SwitchProcess) -> None:
    sw = site
    before = listed(sw, "1001")
    owner = Uac(sw.port, user="1001", password="secret1001")
    try:
        assert (resp := owner.call("*97")) is not None and resp.status == 200
        owner.rtp.drain(0.3)
        owner.rtp.send_dtmf("0000#1111#2222#")  # three wrong PINs, typed ahead
        assert owner.wait_bye(30) is not None
    finally:
        owner.close()
    assert listed(sw, "1001") == before  # nothing heard, nothing deleted
