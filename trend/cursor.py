"""A symbol's cursor: where the last run stopped and the detectors' state there.

Stored as one item a symbol in the cursor table. ``row_ts`` is the last row evaluated (the
next Query reads ``row_ts < ts <= watermark``, so it never passes the symbol's watermark: see
trend/ports.py ``DurableSymbol``); ``position`` is how far time has been evaluated (the last
row or the settled wall clock, whichever is later) and only ever moves forward: the cursor
write is conditional on it, so an older run can never move a cursor back.
"""

from __future__ import annotations

from typing import Final

import msgspec

from trend.anomaly import AnomalyState
from trend.crossover import CrossoverState
from trend.errors import CorruptCursor


class SymbolCursor(msgspec.Struct):
    row_ts: str | None = None  # fixed-width UTC ts of the last row evaluated
    position: str | None = None  # fixed-width UTC ts; monotonic, the write condition
    crossover: CrossoverState = msgspec.field(default_factory=CrossoverState)
    anomaly: AnomalyState = msgspec.field(default_factory=AnomalyState)


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(SymbolCursor)


def encode_cursor(cursor: SymbolCursor) -> str:
    return _encoder.encode(cursor).decode()


def decode_cursor(symbol: str, raw: str) -> SymbolCursor:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptCursor(symbol, str(exc)) from None
