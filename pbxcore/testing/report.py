"""Replay results as plain text, JSON and JUnit XML (for pytest, CI servers and `pbx replay`).

The terminal rendering with colours lives in pbxcore/cli/replay_cmd.py; this module has no
terminal in mind: the same text goes into pytest failures and JUnit failure messages.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from pbxcore.testing.replay import FixtureResult, StepResult

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
STDERR_SHOWN = 4000
"""Characters of a failed step's stderr kept in reports (the tail: errors come last)."""


def step_title(step: StepResult) -> str:
    """`steps[1] gather result=ok digits=1` (the fixture's own way to name a step)."""
    ev = step.event
    parts = [f"steps[{step.index}] {ev.name}"]
    parts += [f"{k}={v}" for k, v in (("result", ev.result), ("digits", ev.digits),
                                      ("recording", ev.recording)) if v]
    return " ".join(parts)


def _tail(text: str) -> str:
    return text if len(text) <= STDERR_SHOWN else "[...]" + text[-STDERR_SHOWN:]


def step_failure_text(step: StepResult) -> str:
    """Why a step failed, with the diff (--- expected / +++ actual) and the script's stderr."""
    lines = [f"{step_title(step)}: {step.message}"]
    if step.diff:
        lines += ["--- expected", "+++ actual (script output)"] + list(step.diff)
    if step.error is not None:
        lines.append(f"script: {step.script}")
        if step.exit_status is not None:
            lines.append(f"exit status: {step.exit_status}")
    if step.stderr.strip():
        lines.append("stderr:")
        lines += ["  " + line for line in _tail(step.stderr).rstrip("\n").split("\n")]
    return "\n".join(lines)


def failure_text(result: FixtureResult) -> str:
    """Everything wrong with one fixture, as plain text ('' when it passed)."""
    if result.error is not None:
        return result.error
    return "\n\n".join(step_failure_text(s) for s in result.failed_steps)


def result_json(result: FixtureResult) -> dict[str, Any]:
    """One fixture's result as a JSON-ready dict (the `pbx replay --json` schema)."""
    return {
        "path": result.shown or str(result.path),
        "name": result.name,
        "passed": result.passed,
        "transport": result.transport,
        "error": result.error,
        "duration": round(result.duration, 6),
        "steps": [{
            "index": s.index,
            "event": s.event.name,
            "result": s.event.result,
            "digits": s.event.digits,
            "script": str(s.script),
            "passed": s.passed,
            "actions": [a.to_text() for a in s.actions],
            "error": s.error,
            "exit_status": s.exit_status,
            "stderr": s.stderr,
            "message": s.message,
            "diff": list(s.diff),
            "duration": round(s.duration, 6),
        } for s in result.steps],
    }


def _xml(text: str) -> str:
    """XML 1.0 cannot hold most control characters at all, not even escaped."""
    return _NOT_XML.sub("\ufffd", text)


def junit_xml(results: Sequence[FixtureResult], *, suite: str = "pbx replay") -> bytes:
    """JUnit XML: one testsuite, one testcase per fixture, the diff in the failure message."""
    failures = sum(1 for r in results if not r.passed and r.error is None)
    errors = sum(1 for r in results if r.error is not None)
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                       failures=str(failures), errors=str(errors), skipped="0",
                       time=f"{sum(r.duration for r in results):.3f}")
    for r in results:
        case = ET.SubElement(ts, "testcase", classname=r.shown or str(r.path), name=r.name,
                             time=f"{r.duration:.3f}")
        if r.passed:
            continue
        text = failure_text(r)
        first = text.split("\n", 1)[0]
        tag = "error" if r.error is not None else "failure"
        node = ET.SubElement(case, tag, message=_xml(first), type=tag)
        node.text = _xml(text)
        stderr = "\n".join(s.stderr for s in r.steps if s.stderr)
        if stderr:
            ET.SubElement(case, "system-err").text = _xml(stderr)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
