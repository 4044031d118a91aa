"""Failed-authentication limits (issue 9 item 5): back-off, then 403 for a while, per source and
per user; the user's own phone is not locked out by a guesser elsewhere; memory is bounded."""

from __future__ import annotations

from pbxcore.sip.auth_throttle import AuthThrottle


def test_free_failures_then_back_off_then_block() -> None:
    t = AuthThrottle(free=3, limit=10, window=60.0, block=60.0, max_delay=4.0)
    verdicts = [t.failed("10.0.0.9", "1001", float(i)) for i in range(10)]
    assert [v.delay for v in verdicts[:9]] == [0, 0, 0, 1, 2, 4, 4, 4, 4]
    assert [v.source_failures for v in verdicts] == list(range(1, 11))
    assert verdicts[-1].blocked == ("source 10.0.0.9 for 60 s after 10 failures",
                                    "user '1001' for 60 s after 10 failures")
    assert t.blocked("10.0.0.9", None, 10.0) == "source blocked for 59 s more"
    assert t.blocked("10.0.0.9", "1001", 69.5) is None  # the block has run out
    assert t.blocked("10.0.0.10", "1002", 10.0) is None  # nobody else is affected


def test_failures_outside_the_window_are_forgotten() -> None:
    t = AuthThrottle(free=3, limit=5, window=60.0)
    for i in range(4):
        t.failed("h", None, i * 100.0)  # one failure every 100 s: never two in a window
    assert t.failed("h", None, 400.0).source_failures == 1
    assert t.blocked("h", None, 400.0) is None


def test_repeated_blocks_double_up_to_the_cap_and_reset_after_quiet() -> None:
    t = AuthThrottle(free=0, limit=2, window=60.0, block=60.0, max_block=240.0)
    lengths = []
    now = 0.0
    for _ in range(4):
        t.failed("h", None, now)
        length = float(t.failed("h", None, now).blocked[0].split(" for ")[1].split(" s")[0])
        lengths.append(length)
        now += length + 1  # try again right after the block ends
    assert lengths == [60, 120, 240, 240]
    now += 241  # quiet for longer than max_block: the back-off starts over
    t.failed("h", None, now)
    assert t.failed("h", None, now).blocked == ("source h for 60 s after 2 failures",)


def test_user_block_spares_the_users_own_phone() -> None:
    t = AuthThrottle(free=0, limit=3)
    t.succeeded("192.0.2.10", "1001", 0.0)  # the phone registered from here
    for i in range(3):
        t.failed(f"198.51.100.{i}", "1001", 1.0)  # a distributed guesser, one try per address
    assert t.blocked("198.51.100.77", "1001", 2.0) == "user blocked for 59 s more"
    assert t.blocked("192.0.2.10", "1001", 2.0) is None
    assert t.blocked("198.51.100.77", "1002", 2.0) is None


def test_tables_are_bounded_whatever_the_usernames() -> None:
    t = AuthThrottle(max_keys=100)
    for i in range(5000):
        t.failed(f"10.0.{i // 256}.{i % 256}", f"user{i}", float(i))
        t.succeeded("10.9.9.9", f"user{i}", float(i))
    assert len(t._sources) == len(t._users) == len(t._known) == 100


def test_caller_text_in_the_block_message_is_escaped() -> None:
    t = AuthThrottle(free=0, limit=1)
    verdict = t.failed("h", "x\n\x1b[31mroot", 0.0)
    assert "\n" not in "".join(verdict.blocked) and "\x1b" not in "".join(verdict.blocked)
