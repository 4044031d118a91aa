"""`[sip] digest_algorithms`: MD5 alone by default (what phones in the field accept, as Asterisk
offers), SHA-256 opt-in, order = preference; every mistake reported at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config

FIXTURES = Path(__file__).parent / "fixtures"
VALID = (FIXTURES / "pbx.toml").read_text()


def with_algorithms(site: Path, value: str) -> Path:
    path = site / "pbx.toml"
    path.write_text(VALID.replace('realm = "test"', f'realm = "test"\ndigest_algorithms = {value}'))
    return path


def test_default_is_md5_only(site: Path) -> None:
    (site / "pbx.toml").write_text(VALID)
    assert load_config(site / "pbx.toml").sip.digest_algorithms == ("MD5",)


@pytest.mark.parametrize(("value", "expected"), [
    ('["SHA-256", "MD5"]', ("SHA-256", "MD5")),
    ('["md5", "sha-256"]', ("MD5", "SHA-256")),
    ('["SHA-256"]', ("SHA-256",)),
])
def test_listed_algorithms_keep_their_order(site: Path, value: str, expected: tuple[str, ...]) -> None:
    assert load_config(with_algorithms(site, value)).sip.digest_algorithms == expected


@pytest.mark.parametrize("value", ['[]', '["SHA-512-256"]', '["MD5", "md5"]', '"MD5"', '[5]'])
def test_bad_values_are_reported_at_their_line(site: Path, value: str) -> None:
    path = with_algorithms(site, value)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = next(no for no, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith("digest_algorithms"))
    assert [(p[1], p[2].split(" (")[0]) for p in err.value.problems] == [(line, (
        'digest_algorithms in [sip] must be a list' if value == '"MD5"' else
        'digest_algorithms must list one or more of "MD5", "SHA-256", each once'))]
