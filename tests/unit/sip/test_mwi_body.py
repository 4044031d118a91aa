"""RFC 3842 message-summary bodies and RFC 6665 subscription durations (pure)."""

from __future__ import annotations

import pytest

from pbxcore.sip.mwi import (
    DEFAULT_EXPIRES,
    MAX_EXPIRES,
    IntervalTooBrief,
    event_package,
    parse_summary,
    subscription_expires,
    summary_body,
)


def test_summary_body_is_rfc3842() -> None:
    assert summary_body(2, 0) == b"Messages-Waiting: yes\r\nVoice-Message: 2/0 (0/0)\r\n"
    assert summary_body(0, 3, "sip:*97@pbx") == (
        b"Messages-Waiting: no\r\nMessage-Account: sip:*97@pbx\r\nVoice-Message: 0/3 (0/0)\r\n")
    assert parse_summary(summary_body(1, 4, "sip:*97@pbx")) == {
        "messages-waiting": "yes", "message-account": "sip:*97@pbx",
        "voice-message": "1/4 (0/0)"}


def test_event_package() -> None:
    assert event_package("Message-Summary;id=3") == "message-summary"
    assert event_package(None) == ""


def test_subscription_expires() -> None:
    assert subscription_expires(None) == DEFAULT_EXPIRES
    assert subscription_expires("0") == 0
    assert subscription_expires("600") == 600
    assert subscription_expires("99999999999") == MAX_EXPIRES  # shortened, never lengthened
    assert subscription_expires("x") == DEFAULT_EXPIRES
    with pytest.raises(IntervalTooBrief):
        subscription_expires("59")
