"""Peer tests need the real programs: SIPp (Debian sip-tester) and root or CAP_NET_RAW for its
RFC 2833 and pcap playback (raw sockets, docs/peers.md "SIPp"), and baresip (Debian
baresip-core).  Say so plainly instead of failing halfway through a call."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session", autouse=True)
def _peer_programs() -> None:
    assert shutil.which("sipp"), "SIPp is missing: apt-get install sip-tester (.ci/bootstrap.sh)"
    assert shutil.which("baresip"), (
        "baresip is missing: apt-get install --no-install-recommends baresip-core "
        "(.ci/bootstrap.sh)")
    assert os.geteuid() == 0 or os.environ.get("PBX_SIPP_HAS_NET_RAW") == "1", (
        "SIPp's play_dtmf needs raw sockets: run as root, or `setcap cap_net_raw+ep "
        "$(which sipp)` and set PBX_SIPP_HAS_NET_RAW=1")
