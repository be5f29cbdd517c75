"""One scheduled run: every symbol from its cursor to now, each alert delivered once.

Per symbol, in this order:

1. load the cursor; Query the rows after it up to the symbol's watermark (trend/ports.py
   ``DurableSymbol``: every row at or before it is written); evaluate (trend/evaluate.py):
   alerts + new cursor. Rows after the watermark are not read: a consumer flush is not atomic
   and its puts land in any order, so a row there may still have an older neighbour in flight,
   and a cursor moved past it would never see that neighbour (a crossing missed). They are
   read by the first run after the consumer saves the state that covers them;
2. for each alert, in time order: claim it in the ledger (conditional put on its key), publish
   it, mark it sent. ``SENT`` from the claim means an earlier or concurrent run delivered it:
   skip. ``BUSY`` means another run holds its lease right now: stop the symbol *without*
   saving the cursor, so if that run dies the alert is found again by a later run;
3. only when every alert is sent (or was before), advance the cursor, conditional on moving
   forward.

What a crash does, by where it happens:
- before a claim: nothing recorded; the next run evaluates the same rows, finds the same alerts;
- after a claim, before the publish: the alert is pending under this run's lease; the cursor
  did not move, so the next run finds it again and takes it over once the lease lapses
  (``alert_lease_seconds``, longer than the function's timeout so a live run is never taken
  over). A publish that *raises* releases the lease at once, so the retry need not wait;
- after the publish, before "sent" is written: the one window where a retry sends again.
  SNS has no transactional publish, so this is the choice of at-least-once over losing a page;
  the window is a single DynamoDB write long;
- after "sent", before the cursor: the next run re-finds the alert and the claim answers SENT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from trend.alerts import Alert, AnomalyAlert, alert_key
from trend.cursor import SymbolCursor
from trend.evaluate import evaluate
from trend.messages import render
from trend.ports import (
    AlertLedger,
    AlertPublisher,
    Claim,
    Clock,
    CursorStore,
    RowReader,
    SymbolSource,
)

log: Final = logging.getLogger(__name__)

# Stop starting work when the invocation has less than this left: a symbol in progress is
# cheap to redo, an alert published after the deadline is not.
SAFETY_MARGIN_SECONDS: Final = 15.0


@dataclass(frozen=True, slots=True)
class Ports:
    symbols: SymbolSource
    rows: RowReader
    cursors: CursorStore
    ledger: AlertLedger
    publisher: AlertPublisher
    clock: Clock


@dataclass(frozen=True, slots=True)
class Policy:
    cooldown: timedelta
    lease: timedelta
    settle: timedelta


@dataclass
class RunReport:
    symbols: int = 0
    rows: int = 0
    crossings_sent: int = 0
    anomaly_alerts_sent: int = 0
    already_sent: int = 0
    deferred: list[str] = field(default_factory=list)  # another run held a lease
    skipped: list[str] = field(default_factory=list)  # state item without a window
    failed: dict[str, str] = field(default_factory=dict)
    out_of_time: bool = False

    @property
    def sent(self) -> int:
        return self.crossings_sent + self.anomaly_alerts_sent


def run_once(
    ports: Ports,
    policy: Policy,
    owner: str,
    seconds_left: Callable[[], float] | None = None,
) -> RunReport:
    """Evaluate every symbol. A failing symbol is recorded and the others still run; the
    caller decides whether that fails the invocation (the Lambda does: its retry resumes)."""
    report = RunReport()
    for found in ports.symbols.symbols():
        symbol = found.symbol
        if seconds_left is not None and seconds_left() < SAFETY_MARGIN_SECONDS:
            report.out_of_time = True
            break
        if found.error is not None:
            log.error("symbol %s not evaluated: %s", symbol, found.error)
            report.failed[symbol] = found.error
            continue
        if found.watermark is None:
            report.skipped.append(symbol)  # no window saved: nothing known to be written
            continue
        report.symbols += 1
        try:
            _run_symbol(symbol, found.watermark, ports, policy, owner, report, seconds_left)
        except Exception as exc:  # one symbol's trouble must not starve the others
            log.exception("symbol %s failed", symbol)
            report.failed[symbol] = f"{type(exc).__name__}: {exc}"
    return report


def _run_symbol(
    symbol: str,
    watermark: str,
    ports: Ports,
    policy: Policy,
    owner: str,
    report: RunReport,
    seconds_left: Callable[[], float] | None,
) -> None:
    cursor = ports.cursors.load(symbol) or SymbolCursor()
    settled_until = ports.clock() - policy.settle
    caught_up = cursor.row_ts is not None and cursor.row_ts >= watermark
    # Caught up: no Query (most symbols between two runs); the clock may still close a window.
    rows = () if caught_up else ports.rows.rows_between(symbol, cursor.row_ts, watermark)
    result = evaluate(symbol, cursor, rows, settled_until, policy.cooldown)
    report.rows += result.rows
    for alert in result.alerts:
        if seconds_left is not None and seconds_left() < SAFETY_MARGIN_SECONDS:
            report.out_of_time = True
            return  # cursor not saved: the next run re-finds the rest
        if not _deliver(symbol, alert, ports, policy, owner, report):
            report.deferred.append(symbol)
            return
    if result.changed:
        ports.cursors.advance(symbol, result.cursor, ports.clock())


def _deliver(
    symbol: str, alert: Alert, ports: Ports, policy: Policy, owner: str, report: RunReport
) -> bool:
    """Claim -> publish -> mark sent. False when another run holds the alert's lease."""
    key = alert_key(alert)
    now = ports.clock()
    claim = ports.ledger.claim(symbol, key, owner, now, now + policy.lease)
    if claim is Claim.SENT:
        report.already_sent += 1
        return True
    if claim is Claim.BUSY:
        return False
    message = render(alert)
    try:
        message_id = ports.publisher.publish(message)
    except Exception:
        ports.ledger.release(symbol, key, owner)
        raise
    ports.ledger.mark_sent(symbol, key, owner, message_id, ports.clock())
    if isinstance(alert, AnomalyAlert):
        report.anomaly_alerts_sent += 1
    else:
        report.crossings_sent += 1
    log.info("alert sent: %s %s (%s)", symbol, key, message_id)
    return True
