"""Messages fit their medium: SMS <= 140, subject < 100 ASCII, no markdown, times in UTC and
the exchange's zone, the attributes filter policies use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from trend.alerts import AnomalyAlert, Move
from trend.crossover import Signal
from trend.messages import SMS_LIMIT, SUBJECT_LIMIT, render
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


def _digest(symbol: str) -> AnomalyAlert:
    moves = tuple(
        Move(TS, Decimal("99999999.99"), Decimal("1.5"), Decimal("-66666.6666666666"))
        for _ in range(12)
    )
    return AnomalyAlert(symbol, TS, moves)


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
    small = AnomalyAlert("AAPL", TS, (Move(TS, Decimal(106), Decimal(100), Decimal(6)),))
    assert render(small).attributes["severity"] == "warning"
    assert "+6.00%" in render(small).sms
    big = render(_digest("AAPL"))
    assert big.attributes == {"symbol": "AAPL", "signal": "anomaly", "severity": "critical"}
    assert big.email.count("-66666.67%") == 12  # every move listed
