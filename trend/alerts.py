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


# A digest lists at most this many moves, the largest; the rest are counted, with the query
# that lists them all. This bounds the SNS message (256 KiB) and the cursor item holding the
# held moves (DynamoDB: 400 KB) whatever the number of moves: 1,000 moves listed made a 239
# KiB message, and one that cannot be published blocks the symbol's crossovers too.
LISTED_MOVES: Final = 10


def _size(move: Move) -> Decimal:
    return Decimal(-1) if move.change_pct is None else abs(move.change_pct)


def largest(moves: list[Move], move: Move) -> list[Move]:
    """``moves`` (the largest so far, time order) with ``move`` (later than all of them)
    considered: the LISTED_MOVES largest by |change_pct|, the earlier one first on a tie. A
    total order, so the kept set does not depend on how the moves were split between runs."""
    if len(moves) < LISTED_MOVES:
        return [*moves, move]
    # The smallest of the kept ones; among equals the latest (the new move loses its ties).
    smallest = min(range(len(moves)), key=lambda i: (_size(moves[i]), -i))
    if _size(move) <= _size(moves[smallest]):
        return moves
    return [*moves[:smallest], *moves[smallest + 1 :], move]


class AnomalyAlert(msgspec.Struct, frozen=True):
    """Significant moves of one symbol alerted together. ``ts`` is the alert's own time: the
    move itself for the first of a quiet period, the end of the cooldown window for a digest
    of the moves held back during it. ``moves`` lists the largest (at most LISTED_MOVES, in
    time order) of the ``count`` moves, the first at ``first_ts``, the latest ``last``."""

    symbol: str
    ts: datetime
    moves: tuple[Move, ...]
    count: int
    first_ts: datetime
    last: Move

    @classmethod
    def single(cls, symbol: str, move: Move) -> AnomalyAlert:
        return cls(symbol, move.ts, (move,), 1, move.ts, move)


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
