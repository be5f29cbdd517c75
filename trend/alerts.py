"""What the alerting sends, before it is rendered: a crossing or a group of significant moves.

Each alert has a key that is a pure function of the rows (symbol, time, kind), so every run,
retry or concurrent run that finds the same alert names it the same way: the ledger's
conditional write on that key is what makes delivery happen once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

import msgspec

from core.contracts.tick import format_ts
from trend.crossover import Signal

ANOMALY: Final = "anomaly"
AlertKind = Literal["golden_cross", "death_cross", "anomaly"]


class Move(msgspec.Struct, frozen=True):
    """One significant move: a row the consumer flagged ``anomaly`` (|change_pct| > 5)."""

    ts: datetime
    price: Decimal
    prev_price: Decimal | None = None
    change_pct: Decimal | None = None


class AnomalyAlert(msgspec.Struct, frozen=True):
    """The significant moves of one symbol alerted together. ``ts`` is the alert's own time:
    the move itself for the first of a quiet period, the end of the cooldown window for a
    digest of the moves held back during it."""

    symbol: str
    ts: datetime
    moves: tuple[Move, ...]


Alert = Signal | AnomalyAlert


def alert_kind(alert: Alert) -> AlertKind:
    return ANOMALY if isinstance(alert, AnomalyAlert) else alert.signal


def alert_key(alert: Alert) -> str:
    """The ledger's range key: ``<fixed-width UTC ts>#<kind>`` (sorts by time)."""
    return f"{format_ts(alert.ts)}#{alert_kind(alert)}"


# A move of at least this many percent makes an anomaly alert "critical" instead of "warning".
CRITICAL_MOVE_PCT: Final = Decimal(10)

Severity = Literal["info", "warning", "critical"]


def severity(alert: Alert) -> Severity:
    if not isinstance(alert, AnomalyAlert):
        return "info"  # a crossing is a trend signal, not an emergency
    if any(
        m.change_pct is not None and abs(m.change_pct) >= CRITICAL_MOVE_PCT for m in alert.moves
    ):
        return "critical"
    return "warning"
