"""Significant moves: at most one alert per symbol per cooldown window, each move in exactly
one alert, the same alerts whatever the schedule (pure rule, then through the runner)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from trend.alerts import LISTED_MOVES, AnomalyAlert, Move
from trend.anomaly import AnomalyState, advance_to
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


def _expected_listing(moves: list[RowView]) -> list[datetime]:
    """The moves a digest lists, by the rule stated independently: the LISTED_MOVES largest by
    |change_pct|, the earlier first on a tie, shown in time order."""
    ranked = sorted(moves, key=lambda r: (-abs(r.change_pct or Decimal(0)), r.ts))
    return sorted(r.ts for r in ranked[:LISTED_MOVES])


@settings(max_examples=60, deadline=None)
@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=60),
    gaps=st.lists(st.integers(min_value=1, max_value=50), min_size=60, max_size=60),
    pcts=st.lists(st.sampled_from(["6", "-6", "7.5", "-12", "30"]), min_size=60, max_size=60),
    chunks=st.lists(st.integers(min_value=0, max_value=9), max_size=20),
)
def test_none_lost_none_doubled_any_schedule(
    flags: list[bool], gaps: list[int], pcts: list[str], chunks: list[int]
) -> None:
    minutes = list(itertools.accumulate(gaps[: len(flags)]))
    rows = [_row(m, f, p) for m, f, p in zip(minutes, flags, pcts, strict=False)]
    end = rows[-1].ts + 2 * HOUR
    once = _run(rows, [], until=end)
    assert _run(rows, chunks, until=end) == once  # schedule does not matter
    # The alerts split the moves, in order, into consecutive groups: each move counted once.
    moved = [r for r in rows if r.anomaly]
    assert sum(a.count for a in once) == len(moved)
    start = 0
    for alert in once:
        group = moved[start : start + alert.count]
        start += alert.count
        assert (alert.first_ts, alert.last.ts) == (group[0].ts, group[-1].ts)
        assert [m.ts for m in alert.moves] == _expected_listing(group)
    for a, b in itertools.pairwise(once):
        assert b.ts - a.ts >= HOUR  # at most one alert per cooldown window


def test_thousands_of_held_moves_keep_the_cursor_small() -> None:
    """DynamoDB items stop at 400 KB; the held moves used to be stored one by one (about
    4,000 reached it). Now the cursor holds only what the digest shows."""
    rows = [_row(0, True)] + [
        _row(m, True, f"{5 + (m * 7919) % 1000 / 100}") for m in range(1, 20_000)
    ]
    cursor = SymbolCursor()
    result = evaluate("AAPL", cursor, rows, rows[-1].ts, timedelta(days=30))
    assert len(result.alerts) == 1  # the first move; 19,999 held
    encoded = encode_cursor(result.cursor)
    assert len(encoded.encode()) < 8 * 1024  # far below 400 KB
    state = decode_cursor("AAPL", encoded).anomaly
    assert state.held == 19_999 and len(state.pending) == LISTED_MOVES
    digest = advance_to(state, "AAPL", rows[-1].ts + timedelta(days=30), timedelta(days=30))
    assert digest is not None and digest.count == 19_999
    assert [m.ts for m in digest.moves] == _expected_listing(rows[1:])


def test_a_cursor_saved_before_the_bound_is_read_bounded() -> None:
    moves = [
        Move(T0 + timedelta(minutes=m), Decimal(100), None, Decimal(6 + m % 13)) for m in range(50)
    ]
    old = {"last_alert": "2024-05-01T13:30:00Z", "pending": moves}
    raw = msgspec.json.encode({"row_ts": "x", "position": "y", "anomaly": old}).decode()
    state = decode_cursor("AAPL", raw).anomaly
    assert state.held == 50 and (state.first_held, state.last_held) == (moves[0].ts, moves[-1])
    ranked = sorted(moves, key=lambda m: (-abs(m.change_pct or Decimal(0)), m.ts))[:LISTED_MOVES]
    assert state.pending == sorted(ranked, key=lambda m: m.ts)


def test_state_round_trips() -> None:
    state = AnomalyState(last_alert=T0, pending=[Move(T0, Decimal("1.5"), None, Decimal("-7.25"))])
    cursor = SymbolCursor(row_ts="x", position="y", anomaly=state)
    assert decode_cursor("S", encode_cursor(cursor)) == cursor
