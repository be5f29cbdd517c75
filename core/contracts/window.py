"""The window's saved form: everything the engine remembers about one symbol.

The consumer saves it (with the position of the last record applied) after every commit; the
alerting reads its ``last_ts`` as the symbol's durable watermark. Defined once, here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

MA_PERIODS: Final = 4


class SymbolWindow(msgspec.Struct, gc=False):
    """Everything the engine remembers about one symbol: small, serialisable, O(1) to update."""

    last_ts: datetime
    last_price: Decimal
    recent: list[Decimal]  # the last <= MA_PERIODS accepted prices, oldest first
    recent_sum: Decimal


_window_encoder: Final = msgspec.json.Encoder()
_window_decoder: Final = msgspec.json.Decoder(SymbolWindow)


def encode_window(window: SymbolWindow) -> bytes:
    return _window_encoder.encode(window)


def decode_window(raw: bytes) -> SymbolWindow:
    return _window_decoder.decode(raw)
