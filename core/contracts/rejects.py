"""Why a raw record is not a valid tick: the stable reasons dead letters carry."""

from __future__ import annotations

from enum import StrEnum

from core.errors import StockpipeError


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


class EngineReason(StrEnum):
    """Why the engine dead-lettered a record that is a valid tick (or could not process it).
    Stable like ``RejectReason``; the two sets share no value."""

    # Not newer than the symbol's last accepted tick (and not an exact duplicate of it).
    LATE = "late"
    # ``ts`` more than the allowed clock skew after the record reached the stream (or, in a
    # file run, after the line was read): accepting it would move the symbol's watermark
    # into the future and make every honest tick after it late.
    FUTURE_TIMESTAMP = "future_timestamp"
    # Something raised while decoding, enriching or checking the record for the sinks; the
    # detail names the exception's class. One record must never stop a shard.
    PROCESSING_ERROR = "processing_error"


# Every reason a dead letter can carry.
DEAD_LETTER_REASONS: tuple[str, ...] = (
    *(r.value for r in RejectReason),
    *(r.value for r in EngineReason),
)


class InvalidTick(StockpipeError):
    """A raw record that is not a tick. ``reason`` is machine-readable, ``detail`` is for people."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
