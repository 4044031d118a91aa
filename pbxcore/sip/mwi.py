"""Message waiting (RFC 3842) over SIP-specific event notification (RFC 6665): sans-IO pieces.

* `summary_body` builds the `application/simple-message-summary` body (RFC 3842 §5.2):
  ``Messages-Waiting: yes`` when any message is new, ``Message-Account`` (the URI an owner calls
  to listen: our voicemail access code) and ``Voice-Message: NEW/OLD (0/0)``, the urgent counts
  in brackets (we keep none).  `parse_summary` reads one back (tests, phones we emulate).
* `event_package` is the package of an Event header (RFC 6665 §8.2.1: the token before any
  parameter; compared case-insensitively, §7.2.1).
* `subscription_expires` decides the duration a SUBSCRIBE gets (RFC 6665 §4.2.1.1): the
  requested Expires, shortened to our maximum (a notifier may shorten, never lengthen), the
  default when absent, 0 for an un-SUBSCRIBE; below our minimum it is an error the caller
  answers with 423 Interval Too Brief and Min-Expires.
"""

from __future__ import annotations

from pbxcore.sip.numbers import clamped_uint

MESSAGE_SUMMARY = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
DEFAULT_EXPIRES = 3600
MIN_EXPIRES = 60
MAX_EXPIRES = 3600


class IntervalTooBrief(ValueError):
    """A SUBSCRIBE asked for less than MIN_EXPIRES seconds (answer 423, RFC 6665 §4.2.1.1)."""


def summary_body(new: int, old: int, account: str | None = None) -> bytes:
    lines = [f"Messages-Waiting: {'yes' if new else 'no'}"]
    if account:
        lines.append(f"Message-Account: {account}")
    lines.append(f"Voice-Message: {new}/{old} (0/0)")
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_summary(body: bytes) -> dict[str, str]:
    """The header-like lines of a message summary, names lower-cased (RFC 3842 §5.2)."""
    fields: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def event_package(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def subscription_expires(value: str | None) -> int:
    """Seconds the subscription lasts (0: un-SUBSCRIBE); IntervalTooBrief below MIN_EXPIRES."""
    if value is None or not value.strip():
        return DEFAULT_EXPIRES
    seconds = clamped_uint(value.strip(), MAX_EXPIRES)
    if seconds is None:
        return DEFAULT_EXPIRES  # unreadable: the package default (RFC 6665 §4.1.2.1)
    if 0 < seconds < MIN_EXPIRES:
        raise IntervalTooBrief(str(seconds))
    return seconds
