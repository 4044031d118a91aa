"""How `pbx run` logs: text lines (the default) or one JSON object per line (`--log-format
json`, `[log] format = "json"`), for journald, Loki or Elasticsearch.

A JSON line has `time` (ISO 8601 UTC, milliseconds), `level`, `logger`, `message`, and `call_id`
whenever the record is about one call: given as `extra={"call_id": ...}`, or taken from the
switch's own convention of starting such messages with "call %s" (engine, switch, verbs), so
every existing call log line carries it without touching each call site.  A traceback goes in
`exception`.  The line is `json.dumps(..., ensure_ascii=True)`: caller text in a message (a
display name, digits, a User-Agent) arrives with every control character and non-ASCII letter
escaped, so it can neither break the one-object-per-line framing nor reach a terminal raw.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from pbxcore.script.sanitize import SafeFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def call_id_of(record: logging.LogRecord) -> str | None:
    """The call a record is about, or None."""
    given = record.__dict__.get("call_id")
    if isinstance(given, str):
        return given
    msg, args = record.msg, record.args
    if isinstance(msg, str) and msg.startswith("call %s") and isinstance(args, tuple) and args:
        return str(args[0])
    return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        call_id = call_id_of(record)
        if call_id is not None:
            out["call_id"] = call_id
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=True)


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr in `fmt` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else SafeFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
