"""[web] and [[web.users]]: off by default, values, FILE:LINE errors, secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config

ROUTE = '\n[[routes]]\nmatch = "^100$"\nscript = "scripts/ivr.py"\n'
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


def load(site: Path, text: str):  # type: ignore[no-untyped-def]
    path = site / "pbx.toml"
    path.write_text(text + ROUTE)
    return load_config(path)


def test_off_by_default(site: Path) -> None:
    web = load(site, "").web
    assert (web.host, web.users, web.sl_target, web.session_hours) == (None, (), 80.0, 12.0)


def test_values_and_no_secret_in_repr(site: Path) -> None:
    config = load(site, '[web]\nlisten = "127.0.0.1:8080"\nsecret = "0123456789abcdefXYZ"\n'
                        'sl_target = 90\n[[web.users]]\nname = "sup"\nrole = "supervisor"\n'
                        f'password_hash = "{HASH}"\n[[web.users]]\nname = "tv"\n'
                        f'password_hash = "{HASH}"\n')
    web = config.web
    assert (web.host, web.port, web.sl_target) == ("127.0.0.1", 8080, 90.0)
    assert [(u.name, u.role) for u in web.users] == [("sup", "supervisor"), ("tv", "viewer")]
    assert "0123456789abcdef" not in repr(config) and "argon2" not in repr(config)
    assert config.warnings == ()


def test_listen_without_users_warns(site: Path) -> None:
    config = load(site, '[web]\nlisten = "127.0.0.1:8080"\n')
    assert any("nobody can log in" in reason for _, _, reason in config.warnings)


@pytest.mark.parametrize("text, line, reason", [
    ('[web]\nlisten = "8080"\n', 2, "listen '8080' in [web] must be HOST:PORT"),
    ('[web]\nsecret = "short"\n', 2, "secret in [web] must be at least 16"),
    ('[web]\nsl_target = 0\n', 2, "sl_target 0 in [web] must be a percentage"),
    ('[web]\nlistn = "x"\n', 2, "did you mean 'listen'?"),
    ('[[web.users]]\nname = "a"\npassword_hash = "plain"\n', 3, "must be an argon2 hash"),
    (f'[[web.users]]\nname = "a"\nrole = "admin"\npassword_hash = "{HASH}"\n', 3,
     "role 'admin' in [[web.users]] #1 must be one of supervisor, viewer"),
    (f'[[web.users]]\nname = "a b"\npassword_hash = "{HASH}"\n', 2, "name in [[web.users]] #1"),
    (f'[[web.users]]\nname = "a"\npasswd = "{HASH}"\n', 3, "did you mean 'password_hash'?"),
])
def test_errors_name_the_line(site: Path, text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(site, text)
    assert any(got_line == line and reason in got for _p, got_line, got in e.value.problems), \
        e.value.problems
