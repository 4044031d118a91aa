"""`printable` and `SafeFormatter`: caller text reaches logs and terminals escaped (issue 9, item 7)."""

from __future__ import annotations

import io
import logging
import sys

from hypothesis import given
from hypothesis import strategies as st

from pbxcore.script.sanitize import SafeFormatter, printable


def test_controls_are_escaped_and_text_is_kept() -> None:
    assert printable("1234\ndial 900") == "1234\\ndial 900"
    assert printable("\x1b[31mred\x1b]0;t\x07") == "\\x1b[31mred\\x1b]0;t\\x07"
    assert printable("\x9b2J \x7f \u202eevil \u2028") == "\\x9b2J \\x7f \\u202eevil \\u2028"
    assert printable("12\udcff\udcfe34") == "12\\xff\\xfe34"  # undecodable bytes, as stored
    assert printable("Zoë 名前 [bold]x[/bold] \t") == "Zoë 名前 [bold]x[/bold] \\t"
    assert printable("a\nb\tc\x1b", keep_lines=True) == "a\nb\tc\\x1b"


@given(st.text(st.characters(exclude_categories=())))
def test_output_is_one_printable_line(text: str) -> None:
    out = printable(text)
    out.encode("utf-8")  # no surrogate left
    assert not [c for c in out if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u202e"]


def test_every_log_record_is_escaped_whoever_logs_it() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("pbxcore.test.printable")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("call %s: %s", "x", "1234\ndial 900 \x1b]0;owned\x07")
        try:
            raise ValueError("bad\x1b[2J")
        except ValueError:
            logger.exception("failed for %r", "y")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    lines = text.splitlines()
    assert lines[0] == "WARNING call x: 1234\\ndial 900 \\x1b]0;owned\\x07"
    assert lines[1] == "ERROR failed for 'y'" and lines[2].startswith("Traceback")
    assert "ValueError: bad\\x1b[2J" in text
    assert sys.exc_info() == (None, None, None)
