"""Structured JSON logs on standard error (or a file), one object per line.

Only whitelisted ``extra`` keys are written, and message fields (``extra={"fields":
...}``) always pass through :func:`switch.protocol.masking.mask_fields`: a caller cannot log a
PIN block or track 2 by accident. Raw message bytes are never logged.

Free text is scrubbed too (:func:`switch.protocol.masking.scrub_text`): the message, every string
extra and the traceback. An exception from the database driver (asyncpg) is logged by
class and SQLSTATE only: its message and DETAIL can quote row values (a PAN in a
unique-violation DETAIL, for instance), so they are replaced (issue 11 item 5).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any, Final

from switch.protocol.masking import WIPED, mask_fields, scrub_text

DATABASE_ERROR_TEXT: Final = "[database error text withheld]"

# ``extra`` keys that may appear in a log line (all plain, non-secret values).
LOGGED_EXTRAS: Final = frozenset(
    {
        "event",
        "connection_id",
        "peer",
        "terminal_id",
        "mti",
        "stan",
        "response_code",
        "network_code",
        "reason",
        "error_kind",
        "duration_ms",
        "address",
        "count",
        "signal",
    }
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, whitelisted extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub_text(record.getMessage()),
        }
        for key in LOGGED_EXTRAS:
            if key in record.__dict__:
                entry[key] = _plain(record.__dict__[key])
        fields = record.__dict__.get("fields")
        if fields is not None:
            entry["fields"] = mask_fields(fields) if isinstance(fields, Mapping) else WIPED
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["traceback"] = masked_traceback(self.formatException(record.exc_info),
                                                  record.exc_info[1])
            sqlstate = getattr(record.exc_info[1], "sqlstate", None)
            if sqlstate is not None:
                entry["sqlstate"] = str(sqlstate)
        return json.dumps(entry, ensure_ascii=False, sort_keys=True)


def masked_traceback(text: str, error: BaseException | None) -> str:
    """A traceback safe to log: database driver texts withheld, the rest scrubbed."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if type(error).__module__.split(".")[0] == "asyncpg":
            for value in (str(error), *(str(getattr(error, a, None) or "") for a in
                                        ("detail", "hint", "message"))):
                for line in value.splitlines():
                    if line.strip():
                        text = text.replace(line, DATABASE_ERROR_TEXT)
        error = error.__cause__ or error.__context__
    return scrub_text(text)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_text(str(value))


def configure_logging(level: str = "INFO", log_file: str | None = None) -> None:
    """Send every logger's records as JSON to stderr (or ``log_file``)."""
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a Python warning becomes a JSON record, not a bare line
