"""Structured logs: one JSON object a line on stderr, the same shape for every component
(``ts``, ``level``, ``logger``, ``message``, then the event's own fields), so one log query
covers the producer, the consumer and the CLI. The consumer's stdout belongs to the KCL
protocol, and the daemon re-logs every stderr line, so the default level is INFO with nothing
per record."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

_encoder: Final = msgspec.json.Encoder()
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        extra |= extra.pop("fields", None) or {}  # the producer passes extra={"fields": {...}}
        for key, value in extra.items():
            plain = isinstance(value, str | int | float | bool) or value is None
            entry[key] = value if plain else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore logs every retry at DEBUG and credentials look-ups at INFO: keep them quiet.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("boto3").setLevel(logging.WARNING)
