"""Exceptions of the producer package: one base class, each carrying what a reader needs."""

from __future__ import annotations

from enum import StrEnum


class ProducerError(Exception):
    """Base class of every error raised by ``producer``."""


class RejectReason(StrEnum):
    """Why a raw record is not a valid tick. The values are stable: dead letters and the
    data-quality query group by them."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_PRICE = "bad_price"
    BAD_VALUE = "bad_value"
    BAD_TIMESTAMP = "bad_timestamp"
    NAIVE_TIMESTAMP = "naive_timestamp"
    BAD_SYMBOL = "bad_symbol"


class InvalidTick(ProducerError):
    """A raw record that is not a tick. ``reason`` is machine-readable, ``detail`` is for people."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class KinesisWriteError(ProducerError):
    """The stream cannot be written at all (missing stream, bad credentials, endpoint down after
    the SDK's own retries): nothing more can be sent, so the run stops with this message."""


class SourceError(ProducerError):
    """A quote source that cannot produce (bad input it cannot recover from)."""
