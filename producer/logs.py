"""Producer logging: JSON lines on stderr when nobody watches (ECS, CI, pipes), a compact human
line on a terminal. Events are a name plus ``extra={"fields": {...}}``."""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

from core.logs import JsonFormatter

LOGGER: Final = "stockpipe.producer"


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        return f"stockpipe produce: {record.levelname.lower()}: {record.getMessage()} {fields}"


def configure(stream: TextIO | None = None, *, human: bool | None = None) -> logging.Logger:
    """Route the producer's (and yfinance's) events to ``stream`` (stderr), once."""
    stream = stream or sys.stderr
    human = stream.isatty() if human is None else human
    handler = logging.StreamHandler(stream)
    handler.setFormatter(HumanFormatter() if human else JsonFormatter())
    logger = logging.getLogger(LOGGER)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
