"""[[voicemail]] and [voicemail_access] in pbx.toml: values, defaults, FILE:LINE problems and
the notify program's warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config
from pbxcore.config_voicemail import MIN_SECONDS, VoicemailAccess, VoicemailBox

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "pbx.toml").read_text()


def write(site: Path, text: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(text)
    return path


def problems(site: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(write(site, VALID + text))
    return [f"{line}: {reason}" for _, line, reason in err.value.problems]


def test_boxes_and_defaults(site: Path) -> None:
    config = load_config(write(site, VALID + """
[[voicemail]]
box = "sales"
owners = ["1001", "1002"]
pin = "4711"
greeting = "vm/after-hours"
max_messages = 20
max_seconds = 60
min_seconds = 2
notify = "scripts/ivr.py"
email = "sales@example.com"
mwi = "unsolicited"

[[voicemail]]
box = "1002"

[voicemail_access]
code = "*98"
ask_pin = false
"""))
    sales = config.voicemail_box("sales")
    assert sales == VoicemailBox(
        box="sales", owners=("1001", "1002"), pin="4711", greeting="vm/after-hours",
        max_messages=20, max_seconds=60.0, min_seconds=2.0,
        notify=str(site / "scripts" / "ivr.py"), email="sales@example.com", mwi="unsolicited")
    # A personal box belongs to its extension; the defaults are Asterisk-like.
    assert config.voicemail_box("1002") == VoicemailBox(box="1002", owners=("1002",))
    assert MIN_SECONDS == 1.0 and config.voicemail_box("1002").min_seconds == 1.0  # type: ignore[union-attr]
    assert config.voicemail_owned("1002") == (sales, config.voicemail_box("1002"))
    assert config.voicemail_access == VoicemailAccess(code="*98", ask_pin=False)
    assert load_config(write(site, VALID)).voicemail_access == VoicemailAccess("*97", True)


def test_problems_name_the_line(site: Path) -> None:
    base = len(VALID.splitlines())
    got = problems(site, """
[[voicemail]]
box = "sales"
owners = ["9999"]
pin = "12ab"
max_messages = 0
mwi = "always"
colour = "red"

[[voicemail]]
box = "sales"

[voicemail_access]
code = "97x"
""")
    assert got == [
        f"{base + 8}: unknown key 'colour' in [[voicemail]] #1",
        f"{base + 4}: owner '9999' in [[voicemail]] #1 is not a [[users]] extension",
        f"{base + 5}: pin in [[voicemail]] #1 must be 1..16 digits",
        f"{base + 6}: max_messages 0 in [[voicemail]] #1 must be 1..100000",
        f"{base + 7}: mwi 'always' in [[voicemail]] #1 must be subscribe or unsolicited",
        f"{base + 14}: code '97x' in [voicemail_access] must be 1..16 keys 0-9 * # (or \"\" "
        "to switch it off)",
    ]


def test_missing_notify_program_is_a_warning(site: Path) -> None:
    config = load_config(write(site, VALID + """
[[voicemail]]
box = "sales"
notify = "scripts/nope.sh"
"""))
    assert config.voicemail_box("sales") is not None
    assert [w[2] for w in config.warnings] == [
        "notify program scripts/nope.sh does not exist: voicemail_left events of "
        "[[voicemail]] #1 cannot be sent"]
