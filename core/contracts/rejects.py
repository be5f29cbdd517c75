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


class InvalidTick(StockpipeError):
    """A raw record that is not a tick. ``reason`` is machine-readable, ``detail`` is for people."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
