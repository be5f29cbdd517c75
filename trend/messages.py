"""Rendering an alert for its media: SNS ``MessageStructure=json`` with ``default`` (a JSON
document for machine subscribers: SQS, Lambda, HTTPS), ``email`` (plain text a person on call
can act on) and ``sms`` (<= 140 characters); a subject (<= 100 ASCII characters, SNS's limit)
and the message attributes filter policies match on (``symbol``, ``signal``, ``severity``).

Plain text only: no markdown, so no asterisks or underscores-as-emphasis anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from core.contracts.tick import format_ts
from trend.alerts import Alert, AnomalyAlert, Move, alert_key, alert_kind, severity
from trend.crossover import Signal
from trend.zones import exchange_zone, exchange_zone_name

SMS_LIMIT: Final = 140
SNS_LIMIT_BYTES: Final = 256 * 1024  # SNS's maximum message size, attributes included
SUBJECT_LIMIT: Final = 99  # SNS: "less than 100 characters"
_LABELS: Final = {"golden_cross": "golden cross", "death_cross": "death cross"}


@dataclass(frozen=True, slots=True)
class AlertMessage:
    subject: str
    default: str
    email: str
    sms: str
    attributes: dict[str, str]  # symbol, signal, severity (all String)
    key: str  # the ledger key, for logs

    def sns_message(self) -> str:
        """The ``Message`` of a ``MessageStructure=json`` publish."""
        return json.dumps(
            {"default": self.default, "email": self.email, "sms": self.sms}, ensure_ascii=False
        )

    def size_bytes(self) -> int:
        """What SNS counts against its 256 KiB limit, generously: the message, the subject and
        every attribute's name, type and value, in UTF-8."""
        attributes = sum(len(f"{k}String{v}".encode()) for k, v in self.attributes.items())
        return len(self.sns_message().encode()) + len(self.subject.encode()) + attributes


def price_text(value: Decimal) -> str:
    """A price as a person reads it: 2 decimals, more only for sub-unit prices (FX, pennies)."""
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _sma_text(value: Decimal) -> str:
    return f"{value:.4f}"


def _pct_text(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def _utc_short(ts: datetime) -> str:
    return format_ts(ts)[:16].replace("T", " ") + " UTC"


def _utc_long(ts: datetime) -> str:
    return format_ts(ts)[:19].replace("T", " ") + " UTC"


def _local_long(symbol: str, ts: datetime) -> str:
    local = ts.astimezone(exchange_zone(symbol))
    return (
        f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({exchange_zone_name(symbol)}, exchange time)"
    )


def _fit(limit: int, *candidates: str) -> str:
    """The first candidate within ``limit``; the last one cut hard if none fits (only for
    absurdly long symbols - the bound is a guarantee, not a hope)."""
    for text in candidates:
        if len(text) <= limit:
            return text
    return candidates[-1][: limit - 3] + "..."


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii").replace("\n", " ")


def _silence(symbol: str, kind: str) -> str:
    return (
        "How to silence\n"
        "  Every alert carries the message attributes symbol, signal and severity, so an SNS\n"
        "  subscription filter policy can select what reaches you. For example:\n"
        f'    {"stop " + symbol + " only:":<24}{{"symbol": [{{"anything-but": ["{symbol}"]}}]}}\n'
        f'    stop this kind only:    {{"signal": [{{"anything-but": ["{kind}"]}}]}}\n'
        '    only urgent moves:      {"severity": ["critical"]}\n'
        "  Set it with: aws sns set-subscription-attributes --subscription-arn <yours>\n"
        "  --attribute-name FilterPolicy --attribute-value '<policy>'\n"
        "  To stop everything, use the unsubscribe link at the end of this email.\n"
    )


def _default(alert: Alert, summary: str) -> str:
    doc: dict[str, Any] = {
        "symbol": alert.symbol,
        "signal": alert_kind(alert),
        "severity": severity(alert),
        "ts": format_ts(alert.ts),
        "exchange_zone": exchange_zone_name(alert.symbol),
        "summary": summary,
    }
    if isinstance(alert, Signal):
        doc |= {"price": str(alert.price), "sma_5": str(alert.sma_5), "sma_20": str(alert.sma_20)}
    else:
        doc |= {
            "move_count": alert.count,
            "first_move_ts": format_ts(alert.first_ts),
            "last_move_ts": format_ts(alert.last.ts),
            "moves": [_move_doc(m) for m in alert.moves],  # the largest, time order
        }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _move_doc(move: Move) -> dict[str, str | None]:
    return {
        "ts": format_ts(move.ts),
        "price": str(move.price),
        "prev_price": None if move.prev_price is None else str(move.prev_price),
        "change_pct": None if move.change_pct is None else str(move.change_pct),
    }


def all_moves_command(alert: AnomalyAlert) -> str:
    """The command that lists every move of the digest (sql/queries/anomalies.sql: every
    anomalous tick of the days, all symbols; the symbol is the CSV's first column)."""
    return (
        f"stockpipe query --name anomalies --param from_date={alert.first_ts:%Y-%m-%d} "
        f"--param to_date={alert.last.ts:%Y-%m-%d} --format csv | grep '^{alert.symbol},'"
    )


def _render_cross(alert: Signal) -> AlertMessage:
    label = _LABELS[alert.signal]
    up = alert.signal == "golden_cross"
    price, when = price_text(alert.price), _utc_short(alert.ts)
    sms = _fit(
        SMS_LIMIT,
        f"{alert.symbol} {label}: SMA-5 {'above' if up else 'below'} SMA-20, "
        f"price {price} at {when}",
        f"{alert.symbol} {label} {price} {when}",
    )
    subject = _fit(
        SUBJECT_LIMIT,
        _ascii(f"stockpipe: {alert.symbol} {label} at {price} ({when})"),
        _ascii(f"{alert.symbol} {label}"),
    )
    direction = "above" if up else "below"
    meaning = "short-term momentum has turned up" if up else "short-term momentum has turned down"
    email = (
        f"{label.capitalize()} on {alert.symbol}: SMA-5 crossed {direction} SMA-20\n\n"
        "What happened\n"
        f"  The 5-period simple moving average of {alert.symbol}'s price crossed {direction}\n"
        f"  its 20-period average: {meaning}.\n"
        f"  SMA-5:   {_sma_text(alert.sma_5)}\n"
        f"  SMA-20:  {_sma_text(alert.sma_20)}\n"
        f"  Price:   {price}\n"
        f"  Time:    {_utc_long(alert.ts)}\n"
        f"           {_local_long(alert.symbol, alert.ts)}\n\n"
        "What to do\n"
        "  A crossover is a trend signal, not an instruction to trade. Look at the recent\n"
        f"  price history of {alert.symbol} and the news, then review positions, orders and\n"
        "  any rule of your own that keys on this signal. No action is needed to acknowledge\n"
        "  this alert: it is sent once.\n\n"
        f"{_silence(alert.symbol, alert.signal)}\n"
        f"Alert {alert.symbol} {alert_key(alert)}, sent by stockpipe trend alerts.\n"
    )
    summary = f"{alert.symbol} {label}: SMA-5 {_sma_text(alert.sma_5)}, SMA-20 " + (
        f"{_sma_text(alert.sma_20)}, price {price} at {when}"
    )
    return AlertMessage(
        subject=subject,
        default=_default(alert, summary),
        email=email,
        sms=sms,
        attributes={"symbol": alert.symbol, "signal": alert.signal, "severity": severity(alert)},
        key=alert_key(alert),
    )


def _largest_first(move: Move) -> tuple[bool, Decimal]:
    return move.change_pct is None, -abs(move.change_pct or Decimal(0))


def _render_anomaly(alert: AnomalyAlert) -> AlertMessage:
    last, count = alert.last, alert.count
    price, when = price_text(last.price), _utc_short(last.ts)
    if count == 1:
        head = f"{alert.symbol} moved {_pct_text(last.change_pct)} to {price} at {when}"
        sms_short = f"{alert.symbol} move {_pct_text(last.change_pct)} {price} {when}"
    else:
        head = (
            f"{alert.symbol}: {count:,} moves over 5% since {_utc_short(alert.first_ts)}, last "
            f"{_pct_text(last.change_pct)} to {price} at {when}"
        )
        sms_short = (
            f"{alert.symbol} {count:,} moves>5% last {_pct_text(last.change_pct)} {price} {when}"
        )
    sms = _fit(SMS_LIMIT, head, sms_short)
    title = (
        f"{alert.symbol} moved {_pct_text(last.change_pct)} to {price}"
        if count == 1
        else f"{alert.symbol}: {count:,} moves over 5%, last {_pct_text(last.change_pct)} to "
        f"{price}"
    )
    subject = _fit(
        SUBJECT_LIMIT,
        _ascii(f"stockpipe: {title} ({when})"),
        _ascii(f"stockpipe: {alert.symbol} significant move"),
        _ascii(f"{alert.symbol} significant move"),
    )
    lines = []
    for m in sorted(alert.moves, key=_largest_first):
        frm = "" if m.prev_price is None else f" from {price_text(m.prev_price)}"
        lines.append(
            f"  {_utc_long(m.ts)}  {_pct_text(m.change_pct):>8}{frm} to {price_text(m.price)}\n"
            f"    {_local_long(alert.symbol, m.ts)}\n"
        )
    if count == 1:
        listed = f"  {alert.symbol}'s price changed by more than 5% from one tick to the next:\n"
        grouped = "  This is the first significant move after a quiet period.\n"
    else:
        shown = (
            f"all {count}, largest first"
            if count == len(alert.moves)
            else f"the {len(alert.moves)} largest, largest first"
        )
        listed = (
            f"  {alert.symbol}'s price changed by more than 5% from one tick to the next "
            f"{count:,} times\n  between {_utc_long(alert.first_ts)} and "
            f"{_utc_long(last.ts)} ({shown}):\n"
        )
        grouped = (
            "  These moves happened within one cooldown window and are sent together, so a\n"
            "  volatile day pages you once per window rather than once per move.\n"
        )
        if count > len(alert.moves):
            grouped += (
                f"  All {count:,} moves: {all_moves_command(alert)}\n"
                "  (on AWS: the Athena named query anomalies in the stack's workgroup, same\n"
                f"  dates, rows of {alert.symbol}).\n"
            )
    email = (
        f"Significant price move{'s' if count > 1 else ''} on {alert.symbol}\n\n"
        "What happened\n" + listed + "".join(lines) + grouped + "\nWhat to do\n"
        f"  Check whether the move is real (news, earnings, a split or a bad quote) before\n"
        f"  acting; review positions and open orders in {alert.symbol}. Further moves of\n"
        f"  {alert.symbol} within the cooldown window are held and sent as one digest.\n\n"
        f"{_silence(alert.symbol, 'anomaly')}\n"
        f"Alert {alert.symbol} {alert_key(alert)}, sent by stockpipe trend alerts.\n"
    )
    return AlertMessage(
        subject=subject,
        default=_default(alert, head),
        email=email,
        sms=sms,
        attributes={"symbol": alert.symbol, "signal": "anomaly", "severity": severity(alert)},
        key=alert_key(alert),
    )


def render(alert: Alert) -> AlertMessage:
    """Deterministic: a retried alert renders the very same message."""
    if isinstance(alert, AnomalyAlert):
        return _render_anomaly(alert)
    return _render_cross(alert)
