"""`pbx phone call NUMBER` and `pbx phone answer`: a pyVoIP softphone as a synthetic call probe.

`call` registers, calls NUMBER, sends --digits, keeps what it heard (--record), hangs up, and
exits by outcome, so cron or a monitoring system can run it against production; `answer`
registers and waits for one call to answer (an agent phone, for testing queues by hand).  One
summary line on stdout (or --json).  pyVoIP runs in a child process (pbxcore.phone.runner).

Exit codes (docs/operations.md):
  0  done: registered, answered (and audio heard with --expect-audio)
  1  the phone itself failed (pyVoIP error, no free port): see the summary's error
  2  usage: bad arguments, or no --server and the config cannot be read
  3  not registered: wrong user or password, or the server did not answer the REGISTER
  4  not answered: rejected, no route, no answer within --timeout (answer: no call came)
  5  no audio: answered, but nothing was heard (only with --expect-audio)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from pbxcore.cli.common import config_option
from pbxcore.cli.control import dumps
from pbxcore.config import ConfigError, load_config
from pbxcore.script.sanitize import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_REGISTERED, EXIT_NOT_ANSWERED, EXIT_NO_AUDIO = range(6)
OUTCOMES = {EXIT_OK: "ok", EXIT_FAILED: "failed", EXIT_NOT_REGISTERED: "not registered",
            EXIT_NOT_ANSWERED: "not answered", EXIT_NO_AUDIO: "no audio"}
_HOSTPORT = re.compile(r"^([A-Za-z0-9.\-]+)(?::(\d{1,5}))?$")


def _server(server: str | None, config_path: Path) -> tuple[str, int]:
    if server is not None:
        m = _HOSTPORT.match(server)
        if not m or not 1 <= int(m.group(2) or 5060) <= 65535:
            raise click.UsageError(f"--server {server!r} must be HOST[:PORT] (IPv4 or a name)")
        return m.group(1), int(m.group(2) or 5060)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.UsageError(f"no --server, and the config cannot be read: "
                               f"{str(exc).splitlines()[0]}") from None
    udp = [a for a in config.sip.listen if a.transport == "udp"]
    if not udp:
        raise click.UsageError("no --server, and the config listens on no UDP address "
                               "(pyVoIP speaks UDP only)")
    host = "127.0.0.1" if udp[0].host in ("0.0.0.0", "") else udp[0].host
    return host, udp[0].port


def phone_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--server", default=None, metavar="HOST:PORT",
                     help="The switch (default: the first UDP listen address of --config)."),
        click.option("--user", required=True, help="The extension to register as."),
        click.option("--password", envvar="PBX_PHONE_PASSWORD", required=True,
                     help="Its password (or $PBX_PHONE_PASSWORD, kept out of ps)."),
        click.option("--digits", default="", help="DTMF to send once answered (0-9 * # A-D)."),
        click.option("--digits-at", type=click.FloatRange(0, 3600), default=1.0,
                     show_default=True, help="Seconds after the answer to send --digits."),
        click.option("--record", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Save what the phone heard as a WAV (8 kHz mono 16-bit)."),
        click.option("--expect-audio", is_flag=True,
                     help="Fail (exit 5) unless audio was heard."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]):
        fn = option(fn)
    return config_option(fn)


def _plan(mode: str, server: str | None, config_path: Path, user: str, password: str,
          digits: str, digits_at: float, record: Path | None, wait: float,
          listen: float) -> dict[str, Any]:
    from pbxcore.phone.runner import free_udp_block, local_ip_for

    if digits and not re.fullmatch(r"[0-9*#A-Da-d]+", digits):
        raise click.UsageError(f"--digits {digits!r}: only 0-9 * # A-D")
    host, port = _server(server, config_path)
    try:
        local = local_ip_for(host, port)
        sip_port = free_udp_block(local, 1)
        rtp = free_udp_block(local, 10)
    except OSError as exc:
        raise click.UsageError(f"cannot reach {host}:{port}: {exc}") from None
    return {"mode": mode, "server_host": host, "server_port": port, "user": user,
            "password": password, "local_ip": local, "sip_port": sip_port, "rtp_low": rtp,
            "rtp_high": rtp + 9, "digits": digits.upper(), "digits_at": digits_at,
            "record": str(record.absolute()) if record else None, "wait": wait,
            "listen": listen,
            # The whole session's bound: register (3 s + 1.2 s), the wait, the call, margins.
            "deadline": 10 + (wait if wait > 0 else 86400) + listen + digits_at + 2 * len(digits)}


def _finish(result: dict[str, Any], plan: dict[str, Any], target: str, expect_audio: bool,
            as_json: bool) -> None:
    if "registered" not in result:
        code = EXIT_FAILED  # the phone process gave no result at all
    elif not result["registered"]:
        code = EXIT_NOT_REGISTERED
    elif not result.get("answered"):
        code = EXIT_NOT_ANSWERED
    elif expect_audio and not result.get("audio_heard"):
        code = EXIT_NO_AUDIO
    else:
        code = EXIT_OK
    server = f"{plan['server_host']}:{plan['server_port']}"
    summary = {"outcome": OUTCOMES[code].replace(" ", "_"), "exit": code, "mode": plan["mode"],
               "server": server, "user": plan["user"], "target": target, **result}
    if as_json:
        click.echo(dumps(summary))
        raise SystemExit(code)
    parts = [f"{OUTCOMES[code].upper()}: {plan['user']} {target} at {server}:"]
    facts = ["registered" if result.get("registered") else "not registered"]
    if result.get("registered"):
        if result.get("answered"):
            facts.append(f"answered after {result['answer_seconds']:g} s")
            facts.append(f"audio heard (rms8 {result['rms8']:g}, {result['loud_frames']} loud "
                         "frames)" if result.get("audio_heard") else "no audio heard")
            if result.get("digits_sent"):
                facts.append(f"digits {result['digits_sent']} sent")
            ender = "the far end" if result.get("ended_by") == "remote" else "the phone"
            facts.append(f"hung up by {ender} after {result['call_seconds']:g} s")
            if result.get("recorded"):
                facts.append(f"recorded {result['recorded']}")
        else:
            facts.append("not answered")
    line = " ".join(parts) + " " + ", ".join(facts)
    if result.get("error"):
        line += f" ({result['error']})"
    click.echo(printable(line))
    raise SystemExit(code)


@click.group("phone")
def phone() -> None:
    """A softphone for probes and tests (pyVoIP, UDP): call a number, or answer as an agent."""


@phone.command("call")
@click.argument("number")
@phone_options
@click.option("--timeout", type=click.FloatRange(1, 3600), default=10.0, show_default=True,
              help="Seconds to wait for the answer, and to stay on the call after it (the "
                   "phone hangs up then, unless the far end did first).")
def call(number: str, server: str | None, user: str, password: str, digits: str,
         digits_at: float, record: Path | None, expect_audio: bool, as_json: bool,
         config_path: Path, timeout: float) -> None:
    """Register, call NUMBER, send --digits, keep what was heard; exit 0 only when it worked."""
    from pbxcore.phone.runner import run_phone

    if not re.fullmatch(r"[A-Za-z0-9_.+*#\-]+", number):
        raise click.UsageError(f"NUMBER {number!r}: letters, digits and _ . + * # - only")
    plan = _plan("call", server, config_path, user, password, digits, digits_at, record,
                 timeout, timeout)
    plan["number"] = number
    _finish(run_phone(plan), plan, f"-> {number}", expect_audio, as_json)


@phone.command("answer")
@phone_options
@click.option("--timeout", type=click.FloatRange(0, 86400), default=60.0, show_default=True,
              help="Seconds to wait for a call (0: for ever).")
@click.option("--max-call", type=click.FloatRange(1, 86400), default=300.0, show_default=True,
              help="Seconds to stay on the call before hanging up (unless the caller did).")
def answer(server: str | None, user: str, password: str, digits: str, digits_at: float,
           record: Path | None, expect_audio: bool, as_json: bool, config_path: Path,
           timeout: float, max_call: float) -> None:
    """Register and wait for one call; answer it, stay until it ends, then exit by outcome."""
    from pbxcore.phone.runner import run_phone

    plan = _plan("answer", server, config_path, user, password, digits, digits_at, record,
                 timeout, max_call)
    _finish(run_phone(plan), plan, "answering", expect_audio, as_json)
