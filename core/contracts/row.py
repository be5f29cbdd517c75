"""The enriched row: the consumer's output schema, defined once (DynamoDB item and Parquet row).

Downstream stages (trend, sql, queries) import it from here; nobody redefines it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

from core.contracts.tick import format_ts


class EnrichedRow(msgspec.Struct, frozen=True, gc=False):
    """One accepted tick with what the consumer derived from its symbol's window."""

    symbol: str
    ts: datetime
    price: Decimal
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    volume: int | None
    source: str | None
    prev_price: Decimal | None
    change: Decimal | None
    change_pct: Decimal | None
    anomaly: bool
    ma_4: Decimal | None
    # Provenance: where the tick came from and when it reached the stream.
    shard_id: str
    sequence_number: str
    arrival_ts: datetime | None


# Field names that are provenance, not content: two runs over the same ticks (a file, the
# stream) agree on everything else.
PROVENANCE_FIELDS: Final = ("shard_id", "sequence_number", "arrival_ts")


def row_to_record(row: EnrichedRow) -> dict[str, Any]:
    """A JSON-ready mapping: timestamps fixed-width UTC strings, numbers kept as Decimal."""
    return {
        "symbol": row.symbol,
        "ts": format_ts(row.ts),
        "price": row.price,
        "open": row.open,
        "high": row.high,
        "low": row.low,
        "volume": row.volume,
        "source": row.source,
        "prev_price": row.prev_price,
        "change": row.change,
        "change_pct": row.change_pct,
        "anomaly": row.anomaly,
        "ma_4": row.ma_4,
        "shard_id": row.shard_id,
        "sequence_number": row.sequence_number,
        "arrival_ts": None if row.arrival_ts is None else format_ts(row.arrival_ts),
    }
