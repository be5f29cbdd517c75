"""Messages fit their medium: SMS <= 140, subject < 100 ASCII, no markdown, times in UTC and
the exchange's zone, the attributes filter policies use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.contracts.tick import format_ts
from trend.alerts import AnomalyAlert, Move
from trend.anomaly import AnomalyState, advance_to, observe
from trend.crossover import Signal
from trend.messages import SMS_LIMIT, SNS_LIMIT_BYTES, SUBJECT_LIMIT, render
from trend.zones import exchange_zone_name

TS = datetime(2024, 7, 1, 19, 59, 59, 123456, tzinfo=UTC)
SYMBOLS = ["AAPL", "BRK-B", "^GSPC", "EURUSD=X", "RELIANCE.NS", "VOD.L", "BTC-USD", "X" * 40]


@pytest.mark.parametrize(
    ("symbol", "zone"),
    [
        ("AAPL", "America/New_York"),
        ("BRK-B", "America/New_York"),
        ("^GSPC", "America/New_York"),
        ("RELIANCE.NS", "Asia/Kolkata"),
        ("VOD.L", "Europe/London"),
        ("EURUSD=X", "UTC"),
        ("7203.T", "Asia/Tokyo"),
    ],
)
def test_zone_from_suffix(symbol: str, zone: str) -> None:
    assert exchange_zone_name(symbol) == zone


def _cross(symbol: str, price: str = "123456789.123456") -> Signal:
    return Signal(symbol, TS, "death_cross", Decimal("187.23456"), Decimal("188.1"), Decimal(price))


def _digest(symbol: str, count: int = 12, pct: str | None = "-66666.6666666666") -> AnomalyAlert:
    """A digest of ``count`` moves built by the grouping rule itself (first move alerted, the
    rest held for the window, closed by the clock)."""
    state, window = AnomalyState(), timedelta(days=1)
    for n in range(count + 1):
        change = None if pct is None else Decimal(pct) - n % 7
        move = Move(TS + timedelta(seconds=n), Decimal("99999999.99"), Decimal("1.5"), change)
        observe(state, symbol, move, window)
    digest = advance_to(state, symbol, TS + window, window)
    assert digest is not None and digest.count == count
    return digest


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_bounds_hold_for_long_symbols_and_prices(symbol: str) -> None:
    for alert in (_cross(symbol), _digest(symbol), _cross(symbol, "0.00012345")):
        message = render(alert)
        assert len(message.sms) <= SMS_LIMIT
        assert len(message.subject) <= SUBJECT_LIMIT
        assert message.subject.isascii() and "\n" not in message.subject
        assert symbol[:8] in message.sms  # the symbol is always there
        for text in (message.sms, message.subject, message.email, message.default):
            assert "*" not in text  # no markdown in plain-text channels
        assert set(message.attributes) == {"symbol", "signal", "severity"}


def test_crossing_email_says_what_when_and_how_to_silence() -> None:
    message = render(_cross("RELIANCE.NS", "2950.5"))
    email = message.email
    assert "SMA-5:   187.2346" in email and "SMA-20:  188.1000" in email
    assert "2950.50" in email
    assert "2024-07-01 19:59:59 UTC" in email
    assert "2024-07-02 01:29:59 IST (Asia/Kolkata" in email
    assert "What to do" in email and "filter policy" in email and "unsubscribe" in email
    assert message.attributes == {
        "symbol": "RELIANCE.NS",
        "signal": "death_cross",
        "severity": "info",
    }
    sms = message.sms
    assert "RELIANCE.NS" in sms and "death cross" in sms and "2950.50" in sms and "19:59" in sms
    sns = json.loads(message.sns_message())
    assert set(sns) == {"default", "email", "sms"}
    assert json.loads(sns["default"])["signal"] == "death_cross"


def test_anomaly_severity_and_listing() -> None:
    small = AnomalyAlert.single("AAPL", Move(TS, Decimal(106), Decimal(100), Decimal(6)))
    assert render(small).attributes["severity"] == "warning"
    assert "+6.00%" in render(small).sms
    big = render(_digest("AAPL"))
    assert big.attributes == {"symbol": "AAPL", "signal": "anomaly", "severity": "critical"}
    # 12 held moves of -66666.67% - (n % 7), n = 1..12: the 10 largest listed, so the one of
    # -66666.67% (n = 7) and the later of the two of -66667.67% (n = 8) are left out.
    assert "-66666.67%" not in big.email and big.email.count("-66667.67%") == 1
    assert big.email.index("-66672.67%") < big.email.index("-66667.67%")  # largest first
    assert "12 times" in big.email and "All 12 moves: stockpipe query --name anomalies" in big.email


@pytest.mark.parametrize("symbol", ["AAPL", "RELIANCE.NS", "X" * 40])
@pytest.mark.parametrize("pct", ["-66666.6666666666", None])
def test_thousands_of_moves_make_a_bounded_message(symbol: str, pct: str | None) -> None:
    """2,000 moves made a 476 KiB message (over SNS's 256 KiB: never delivered, and the
    symbol's crossovers blocked behind it). Now: the largest listed, all counted, the query
    named, far under the limit in every medium."""
    digest = _digest(symbol, count=5_000, pct=pct)
    message = render(digest)
    assert message.size_bytes() < SNS_LIMIT_BYTES / 8
    assert len(message.sms) <= SMS_LIMIT and len(message.subject) <= SUBJECT_LIMIT
    assert "5,000" in message.sms or "5,000" in message.subject
    email = message.email
    assert "5,000 times" in email
    command = (
        "stockpipe query --name anomalies --param from_date=2024-07-01 --param "
        f"to_date=2024-07-01 --format csv | grep '^{symbol},'"
    )
    assert f"All 5,000 moves: {command}" in email
    doc = json.loads(message.default)
    assert doc["move_count"] == 5_000
    assert doc["first_move_ts"] == "2024-07-01T20:00:00.123456Z"  # TS + 1 s: the first held
    assert doc["last_move_ts"] == "2024-07-01T21:23:19.123456Z"  # TS + 5,000 s
    # The listed moves, from how _digest made them (move n is TS + n s, its change pct - n % 7):
    # the 10 largest by |change|, the earliest on a tie; without a change, the 10 earliest.
    held = range(1, 5_001)
    ranked = sorted(held, key=lambda n: (n % 7 != 6, n)) if pct is not None else list(held)
    expected = [format_ts(TS + timedelta(seconds=n)) for n in sorted(ranked[:10])]
    assert [m["ts"] for m in doc["moves"]] == expected
    assert email.count(" UTC  ") == 10  # one line a listed move
