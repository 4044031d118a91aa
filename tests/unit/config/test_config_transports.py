"""[[routes]] transport keys: worker, workers, url, secret; exactly one handler per route."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxcore.config import ConfigError, load_config


def load(site: Path, routes: str):  # type: ignore[no-untyped-def]
    (site / "pbx.toml").write_text(routes)
    return load_config(site / "pbx.toml")


def problems(site: Path, routes: str) -> list[tuple[int, str]]:
    (site / "pbx.toml").write_text(routes)
    with pytest.raises(ConfigError) as info:
        load_config(site / "pbx.toml")
    return [(line, reason) for _, line, reason in info.value.problems]


def test_script_route_is_a_process_route(site: Path) -> None:
    (route,) = load(site, '[[routes]]\nmatch = "1"\nscript = "scripts/ivr.py"\n').routes
    assert (route.transport, route.worker, route.url, route.secret, route.workers) == (
        "process", None, None, None, 2)


def test_worker_route(site: Path) -> None:
    (route,) = load(site, '[[routes]]\nmatch = "1"\nworker = "scripts/ivr.py"\nworkers = 8\n'
                          'env = { CRM = "x" }\n').routes
    assert route.transport == "worker" and route.workers == 8
    assert route.worker == route.script == site / "scripts" / "ivr.py"  # the engine's own-handler test
    assert dict(route.env) == {"CRM": "x"}


def test_webhook_route_keeps_its_secret_out_of_repr(site: Path) -> None:
    (route,) = load(site, '[[routes]]\nmatch = "1"\nurl = "https://crm.example.com/pbx"\n'
                          'secret = "hunter2"\n').routes
    assert route.transport == "webhook" and route.url == "https://crm.example.com/pbx"
    assert route.secret == "hunter2" and "hunter2" not in repr(route)
    assert route.script == Path("https://crm.example.com/pbx") and route.worker is None


def test_exactly_one_handler(site: Path) -> None:
    assert problems(site, '[[routes]]\nmatch = "1"\n') == [
        (1, '[[routes]] #1 needs script = "PATH" (a string), or worker = "PATH" or '
            'url = "http://..."')]
    text = '[[routes]]\nmatch = "1"\nscript = "scripts/ivr.py"\nurl = "http://x/"\n'
    assert problems(site, text) == [
        (4, "[[routes]] #1 has script and url: give exactly one of script, worker, url")]


def test_worker_problems(site: Path) -> None:
    (site / "scripts" / "plain.py").write_text("print()\n")
    text = ('[[routes]]\nmatch = "1"\nworker = "scripts/missing.py"\n'
            '[[routes]]\nmatch = "2"\nworker = "scripts/plain.py"\nworkers = 65\n'
            '[[routes]]\nmatch = "3"\nscript = "scripts/ivr.py"\nworkers = 2\n'
            '[[routes]]\nmatch = "4"\nworker = 7\n')
    assert problems(site, text) == [
        (7, "workers 65 in [[routes]] #2 must be 1..64"),
        (11, 'workers in [[routes]] #3 needs worker = "PATH"'),
        (14, '[[routes]] #4 needs worker = "PATH" (a string)'),
    ]
    cfg = load(site, text.replace("workers = 65\n", "").replace("workers = 2\n", "")
               .replace("worker = 7", 'worker = "scripts/ivr.py"'))
    assert [(line, reason) for _, line, reason in cfg.warnings] == [  # warnings, not problems
        (3, "worker scripts/missing.py does not exist"),
        (6, "worker scripts/plain.py is not executable (chmod +x)"),
    ]


@pytest.mark.parametrize("url", ["ftp://x/", "http://", "http://x:99999/", "crm.example.com",
                                 "http://user:pw@x/", "http://x/a b"])
def test_bad_urls(site: Path, url: str) -> None:
    assert problems(site, f'[[routes]]\nmatch = "1"\nurl = "{url}"\n') == [
        (3, f"url {url!r} in [[routes]] #1 must be http://HOST[:PORT][/PATH] or https://...")]


def test_secret_problems(site: Path) -> None:
    text = ('[[routes]]\nmatch = "1"\nscript = "scripts/ivr.py"\nsecret = "x"\n'
            '[[routes]]\nmatch = "2"\nurl = "http://h/"\nsecret = ""\n')
    assert problems(site, text) == [
        (4, 'secret in [[routes]] #1 needs url = "http://..."'),
        (8, "secret in [[routes]] #2 must not be empty"),
    ]
