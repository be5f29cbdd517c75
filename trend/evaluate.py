"""One symbol's new rows through both detectors: the alerts they cause and the new cursor.

Pure (no I/O): the runner feeds it rows read after the cursor and decides what to do with the
result, so the exactly-once protocol and the detection logic can be tested apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec

from core.contracts.tick import format_ts
from trend.alerts import Alert, Move
from trend.anomaly import advance_to, observe
from trend.crossover import step
from trend.cursor import SymbolCursor


class RowView(msgspec.Struct, frozen=True, gc=False):
    """The part of an enriched row (core/contracts/row.py) the alerting reads."""

    ts: datetime
    price: Decimal
    anomaly: bool = False
    prev_price: Decimal | None = None
    change_pct: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    alerts: list[Alert]
    cursor: SymbolCursor
    rows: int
    changed: bool  # whether the cursor differs from the one evaluated from


def evaluate(
    symbol: str,
    cursor: SymbolCursor,
    rows: Iterable[RowView],
    settled_until: datetime,
    cooldown: timedelta,
) -> Evaluation:
    """Feed ``rows`` (ascending ``ts``, all newer than ``cursor.row_ts``) and then the settled
    wall clock. ``cursor`` is updated in place and returned."""
    alerts: list[Alert] = []
    count = 0
    for row in rows:
        count += 1
        signal = step(cursor.crossover, symbol, row.ts, row.price)
        if signal is not None:
            alerts.append(signal)
        if row.anomaly:
            move = Move(row.ts, row.price, row.prev_price, row.change_pct)
            alerts.extend(observe(cursor.anomaly, symbol, move, cooldown))
        else:
            closed = advance_to(cursor.anomaly, symbol, row.ts, cooldown)
            if closed is not None:
                alerts.append(closed)
        cursor.row_ts = format_ts(row.ts)
    closed = advance_to(cursor.anomaly, symbol, settled_until, cooldown)
    if closed is not None:
        alerts.append(closed)
    changed = count > 0 or bool(alerts)
    if changed:
        candidates = [p for p in (cursor.position, cursor.row_ts, format_ts(settled_until)) if p]
        cursor.position = max(candidates)
    return Evaluation(alerts=alerts, cursor=cursor, rows=count, changed=changed)
