"""The `pbx` command (also `python -m pbxcore`): one click group, one module per command."""

from __future__ import annotations

import logging

import click

from pbxcore import __version__
from pbxcore.cli.calls_cmd import calls, hangup
from pbxcore.cli.campaign_cmd import campaign
from pbxcore.cli.cdr_cmd import cdr
from pbxcore.cli.check_cmd import check
from pbxcore.cli.conference_cmd import conference, conferences, consult, spy
from pbxcore.cli.journal_cmd import journal
from pbxcore.cli.originate_cmd import originate
from pbxcore.cli.phone_cmd import phone
from pbxcore.cli.queues_cmd import agent, agents, queues
from pbxcore.cli.registrations_cmd import registrations
from pbxcore.cli.replay_cmd import replay
from pbxcore.cli.report_cmd import report_command
from pbxcore.cli.run_cmd import run
from pbxcore.cli.simulate_cmd import simulate
from pbxcore.cli.switch_cmd import reload, status
from pbxcore.cli.top_cmd import top
from pbxcore.cli.trace_cmd import trace
from pbxcore.cli.voicemail_cmd import voicemail
from pbxcore.cli.web_cmd import web
from pbxcore.script.sanitize import SafeFormatter


@click.group(name="pbx", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pbx")
def main() -> None:
    """pbxcore: a SIP switching core that runs a script per call event."""
    # What logging's last-resort handler would print (warnings and up, the bare message), but
    # through SafeFormatter: caller text in a log record never reaches the terminal raw.
    # `pbx run` replaces it with its own timestamped handler.
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


for command in (check, run, cdr, trace, journal, replay, simulate, status, calls, hangup,
                registrations, reload, queues, agents, agent, report_command, top, phone, web,
                conferences, conference, spy, consult, voicemail):
    main.add_command(command)
main.add_command(originate)
main.add_command(campaign)
