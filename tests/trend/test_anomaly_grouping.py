"""Significant moves: at most one alert per symbol per cooldown window, each move in exactly
one alert, the same alerts whatever the schedule (pure rule, then through the runner)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from trend.alerts import AnomalyAlert, Move
from trend.anomaly import AnomalyState
from trend.cursor import SymbolCursor, decode_cursor, encode_cursor
from trend.evaluate import RowView, evaluate

T0 = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _row(minute: int, anomaly: bool, pct: str = "6") -> RowView:
    return RowView(
        ts=T0 + timedelta(minutes=minute),
        price=Decimal(100),
        anomaly=anomaly,
        prev_price=Decimal(94),
        change_pct=Decimal(pct) if anomaly else Decimal("0.1"),
    )


def _run(rows: list[RowView], chunks: list[int], until: datetime) -> list[AnomalyAlert]:
    """Evaluate ``rows`` in chunks (one scheduled run each, cursor round-tripped as stored)."""
    cursor, alerts, start = SymbolCursor(), [], 0
    for size in [*chunks, len(rows)]:
        part = rows[start : start + size]
        start += len(part)
        # A run's clock never passes a row not yet written (the settle margin's promise): an
        # empty run happens at the time of the last row read so far.
        clock = part[-1].ts if part else (rows[start - 1].ts if start else T0)
        result = evaluate("AAPL", cursor, part, clock, HOUR)
        alerts += [a for a in result.alerts if isinstance(a, AnomalyAlert)]
        cursor = decode_cursor("AAPL", encode_cursor(result.cursor))
    alerts += [
        a for a in evaluate("AAPL", cursor, [], until, HOUR).alerts if isinstance(a, AnomalyAlert)
    ]
    return alerts


def test_first_move_at_once_then_one_digest_per_window() -> None:
    rows = [
        _row(0, True, "10"),  # first after quiet: alerted at once
        _row(5, True, "-6"),  # held
        _row(20, True, "7"),  # held
        _row(30, False),
        _row(61, False),  # the window [0, 60) has ended: digest of the two held moves
        _row(70, True, "6"),  # inside the digest's window [60, 120): held
        _row(80, False),
    ]
    alerts = _run(rows, [], until=T0 + timedelta(minutes=200))  # market closed: clock flushes
    assert [a.ts for a in alerts] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert [len(a.moves) for a in alerts] == [1, 2, 1]
    assert [m.change_pct for m in alerts[1].moves] == [Decimal(-6), Decimal(7)]


def test_moves_far_apart_are_each_alerted_at_once() -> None:
    rows = [_row(0, True), _row(61, True), _row(200, True)]
    alerts = _run(rows, [], until=T0)
    assert [a.ts for a in alerts] == [r.ts for r in rows]


def test_a_quiet_symbol_keeps_held_moves_until_the_clock_ends_the_window() -> None:
    rows = [_row(0, True), _row(10, True)]
    assert len(_run(rows, [], until=T0 + timedelta(minutes=59))) == 1
    late = _run(rows, [], until=T0 + timedelta(minutes=60))
    assert len(late) == 2 and late[1].ts == T0 + HOUR


@settings(max_examples=60, deadline=None)
@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=60),
    gaps=st.lists(st.integers(min_value=1, max_value=50), min_size=60, max_size=60),
    chunks=st.lists(st.integers(min_value=0, max_value=9), max_size=20),
)
def test_none_lost_none_doubled_any_schedule(
    flags: list[bool], gaps: list[int], chunks: list[int]
) -> None:
    minutes = list(itertools.accumulate(gaps[: len(flags)]))
    rows = [_row(m, f) for m, f in zip(minutes, flags, strict=True)]
    end = rows[-1].ts + 2 * HOUR
    once = _run(rows, [], until=end)
    assert _run(rows, chunks, until=end) == once  # schedule does not matter
    moved = [m.ts for a in once for m in a.moves]
    assert moved == [r.ts for r in rows if r.anomaly]  # each move exactly once, in order
    for a, b in itertools.pairwise(once):
        assert b.ts - a.ts >= HOUR  # at most one alert per cooldown window


def test_state_round_trips() -> None:
    state = AnomalyState(last_alert=T0, pending=[Move(T0, Decimal("1.5"), None, Decimal("-7.25"))])
    cursor = SymbolCursor(row_ts="x", position="y", anomaly=state)
    assert decode_cursor("S", encode_cursor(cursor)) == cursor
