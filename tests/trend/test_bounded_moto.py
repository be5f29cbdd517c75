"""A symbol with thousands of significant moves, on moto: its crossovers are all alerted, its
digest is published (far under SNS's 256 KiB) and its cursor item stays small. Before the
bound, the digest of 2,000 moves was 476 KiB: SNS refused it every run, the cursor never
advanced, and the symbol's crossovers were blocked behind it."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from consumer.pipeline import TickPipeline
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick, encode_tick
from tests.trend.conftest import FixedClock, Stack, alert_identity
from tests.trend.helpers import SYNTHETIC_START, oracle_crossings
from trend.messages import SNS_LIMIT_BYTES

MOVES = 2_000


def _volatile_rows() -> list[EnrichedRow]:
    """A slow wave (crossovers at its turns) with every other tick 6 % up: every tick is a
    move over 5 % (the consumer flags it), in cents so the oracle never sits on a tie."""
    pipeline, rows = TickPipeline(), []
    for t in range(MOVES + 1):
        base = 100 + 20 * math.sin(2 * math.pi * t / 240)
        price = Decimal(str(round(base * (1.06 if t % 2 else 1.0), 2)))
        tick = Tick("VOLA", SYNTHETIC_START + timedelta(minutes=t), price)
        row = pipeline.apply(encode_tick(tick), "shardId-000000000000", str(t))
        assert isinstance(row, EnrichedRow)
        rows.append(row)
    return rows


def test_thousands_of_moves_do_not_block_crossovers(stack: Stack) -> None:
    rows = _volatile_rows()
    assert sum(r.anomaly for r in rows) == MOVES  # every tick after the first
    stack.write_rows(rows)
    clock = FixedClock(rows[-1].ts)
    report = stack.run(clock, owner="first")
    assert not report.failed and report.complete
    delivered = stack.received()
    crossings = Counter(i for i in map(alert_identity, delivered) if i[2] != "anomaly")
    expected = oracle_crossings(rows)
    assert len(expected) >= 10 and set(crossings) == expected and max(crossings.values()) == 1
    # The window (7 days, the stack's policy) ends: the digest of the held moves goes out.
    clock.now = rows[1].ts + timedelta(days=7)
    report = stack.run(clock, owner="window-end")
    assert not report.failed and report.anomaly_alerts_sent == 1
    (digest,) = stack.received()
    doc = json.loads(digest["Message"])
    assert doc["signal"] == "anomaly" and doc["move_count"] == MOVES - 1  # first alone
    assert len(digest["Message"].encode()) < SNS_LIMIT_BYTES / 8
    # The cursor item held 1,999 moves' worth of state and is still a few KB.
    item = stack.dynamodb.get_item(
        TableName=stack.settings.cursor_table, Key={"symbol": {"S": "VOLA"}}
    )["Item"]
    assert len(item["cursor"]["S"].encode()) < 8 * 1024
