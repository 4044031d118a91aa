"""`printable` and `SafeFormatter`: caller text reaches logs and terminals escaped (issue 9, item 7)."""

from __future__ import annotations

import io
import json
import logging
import sys
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from pbxcore.script.sanitize import SafeFormatter, json_printable, printable


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


ESCAPED = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")


def test_every_control_format_and_private_character_is_escaped_and_nothing_else() -> None:
    """The one escaper (logs, CLI tables, --json) against this Python's own Unicode database:
    every character of the categories that can drive or hide text is escaped, every other
    assigned character is kept as it is (letters of any script, emoji, NBSP)."""
    wrong = []
    for n in range(sys.maxunicode + 1):
        c = chr(n)
        category = unicodedata.category(c)
        escaped = printable(c) != c
        if escaped != (category in ESCAPED) and category != "Cn":
            wrong.append(f"U+{n:04X} {category}")
    assert wrong == []


def test_the_cli_escapers_are_the_one_escaper() -> None:
    from pbxcore.cli import common, control

    hostile = "Zo\u00eb\u200b\u00a0\U0001f600\x1b[2J\r\n\u202e\ue000\udcff"
    assert control.printable(hostile) == common.printable(hostile) == printable(hostile) == (
        "Zo\u00eb\\u200b\u00a0\U0001f600\\x1b[2J\\r\\n\\u202e\\ue000\\xff")
    text = json_printable({"name": hostile, "bidi": "\U000e0001\x85"})
    assert control.dumps({"name": hostile, "bidi": "\U000e0001\x85"}) == text
    assert common.json_text({"name": hostile, "bidi": "\U000e0001\x85"}) == text
    assert json.loads(text) == {"name": hostile, "bidi": "\U000e0001\x85"}
    assert not [c for c in text if unicodedata.category(c) in ESCAPED and c not in "\n"]
