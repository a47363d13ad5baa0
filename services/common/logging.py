"""JSON-lines logging on stderr, one object per record.

Each line has `time` (ISO 8601, UTC), `level`, `service`, `logger`, `message`, the fields
passed as `extra={"fields": {...}}` (see `log_fields`), and `exception` with the traceback
when there is one. Tracebacks are the standard ones: no frame locals, which may hold secrets.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO


class _JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(str(key), value)  # the fixed keys win over a field's
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # default=str: a field that JSON cannot hold must not lose the whole line
        return json.dumps(line, default=str, ensure_ascii=False)


class _JsonHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second call replaces it."""


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send the root logger's records to stderr as JSON lines; calling again reconfigures."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(handler)
        handler.close()
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level.upper())


def log_fields(
    logger: logging.Logger,
    level: int,
    event: str,
    *,
    exc_info: BaseException | bool = False,
    **fields: Any,
) -> None:
    """Log `event` with structured `fields`, e.g. `log_fields(log, INFO, "leased", id=x)`."""
    logger.log(level, event, exc_info=exc_info, extra={"fields": fields}, stacklevel=2)
