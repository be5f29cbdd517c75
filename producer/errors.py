"""Exceptions of the producer package: one base class, each carrying what a reader needs."""

from __future__ import annotations

from core.errors import StockpipeError


class ProducerError(StockpipeError):
    """Base class of every error raised by ``producer``."""

    exit_code = 1  # records could not be sent: the run failed, the arguments were fine


class KinesisWriteError(ProducerError):
    """The stream cannot be written at all (missing stream, bad credentials, endpoint down after
    the SDK's own retries): nothing more can be sent, so the run stops with this message."""


class SourceError(ProducerError):
    """A quote source that cannot produce (bad input it cannot recover from)."""
