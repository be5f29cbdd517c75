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

Fair rotation (every symbol evaluated, whatever the count). A run has a time budget (the
Lambda's remaining time minus a safety margin); with more symbols than fit in it, a run that
always started at the first symbol would never reach the last ones. So the symbols form a ring
in sorted order, and a run starts right after the symbol the previous run finished with (an
item in the cursor table, trend/dynamo.py ``DynamoRotation``), goes round, and stops when the
ring is done or its budget is spent; it then saves the last symbol it finished. Consecutive
runs therefore cover every symbol:

    symbols per run  S = budget / (measured cost per symbol)
    runs to cover N  R = ceil(N / S)      (every symbol evaluated at least once every R runs)

and an alert waits at most R schedule periods (plus one run) after its row is durable. The
run reports and meters how far it got (``complete``, ``symbols_remaining``, the metric
``RunOutOfTime`` and its alarm), so a growing R is seen before it becomes a late page.

Why a rotation rather than fanning the symbols out over concurrent invocations: it keeps one
run at a time (the stack reserves 2 for overlap), needs one extra item and no queue or state
machine, and cannot fail half-way between a dispatcher and its workers; its price is that
alert latency grows with N / S, which is measured and alarmed. Fanning out stays possible
later without touching the guarantees: the ledger and the forward-only cursors already make
concurrent runs over the same symbols safe (tests/trend/test_alerts_moto.py).

Which symbols count as finished (the rotation moves past them): evaluated, skipped (no window),
failed (recorded; the rotation must move past a symbol that fails every time, or the symbols
after it would starve) and deferred (another run holds a lease; its alerts are re-found on the
next pass). A symbol interrupted by the budget between two alerts is not finished: the next
run starts with it.
"""

from __future__ import annotations

import bisect
import enum
import logging
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from trend.alerts import Alert, AnomalyAlert, alert_key
from trend.budget import Budget
from trend.cursor import SymbolCursor
from trend.evaluate import evaluate
from trend.messages import render
from trend.ports import (
    AlertLedger,
    AlertPublisher,
    Claim,
    Clock,
    CursorStore,
    DurableSymbol,
    RotationStore,
    RowReader,
    SymbolSource,
)

log: Final = logging.getLogger(__name__)

# The Lambda stops starting work when its invocation has less than this left: a symbol in
# progress is cheap to redo, an alert published after the deadline is not (trend/handlers.py).
SAFETY_MARGIN_SECONDS: Final = 15.0


@dataclass(frozen=True, slots=True)
class Ports:
    symbols: SymbolSource
    rows: RowReader
    cursors: CursorStore
    ledger: AlertLedger
    publisher: AlertPublisher
    clock: Clock
    rotation: RotationStore


@dataclass(frozen=True, slots=True)
class Policy:
    cooldown: timedelta
    lease: timedelta
    settle: timedelta
    workers: int = 1  # symbols evaluated at a time


@dataclass
class RunReport:
    symbols: int = 0  # evaluated (a window to read), this run
    rows: int = 0
    crossings_sent: int = 0
    anomaly_alerts_sent: int = 0
    already_sent: int = 0
    deferred: list[str] = field(default_factory=list)  # another run held a lease
    skipped: list[str] = field(default_factory=list)  # state item without a window
    failed: dict[str, str] = field(default_factory=dict)
    out_of_time: bool = False
    symbols_total: int = 0  # known to the consumer
    symbols_remaining: int = 0  # not reached this run (out of time): the next runs' share
    started_after: str | None = None  # the rotation point this run started from
    resume_after: str | None = None  # where the next run starts (the last symbol finished)
    seconds: float = 0.0  # spent on the symbols (the scan of the state table included)

    @property
    def sent(self) -> int:
        return self.crossings_sent + self.anomaly_alerts_sent

    @property
    def complete(self) -> bool:
        """Every known symbol was reached this run."""
        return not self.out_of_time and self.symbols_remaining == 0


class _Outcome(enum.Enum):
    DONE = "done"  # evaluated, skipped, failed or deferred: the rotation may move past it
    OUT_OF_TIME = "out_of_time"  # cut between two alerts: the next run starts with it


def rotate(found: Sequence[DurableSymbol], after: str | None) -> list[DurableSymbol]:
    """``found`` (sorted by symbol) as a ring starting right after ``after``. The symbol
    itself need not exist any more (delisted): the ring starts at the next one that does."""
    if after is None:
        return list(found)
    split = bisect.bisect_right([d.symbol for d in found], after)
    return [*found[split:], *found[:split]]


def run_once(ports: Ports, policy: Policy, owner: str, budget: Budget | None = None) -> RunReport:
    """Evaluate the symbols, starting after the rotation point, until every one is done or
    ``budget`` is spent. A failing symbol is recorded and the others still run; the caller
    decides whether that fails the invocation (the Lambda does: its retry resumes).

    ``policy.workers`` symbols are evaluated at a time: a symbol's cost is almost all round trips
    to DynamoDB and SNS, so threads multiply the symbols a budget covers. Symbols never
    share a cursor or an alert, so each keeps its exactly-once protocol whatever the others
    do; the rotation resumes after the last symbol of the finished *prefix* of the ring, so
    a symbol still in flight when the budget ran out is where the next run starts."""
    budget = budget or Budget(None)
    report = RunReport()
    report.started_after = ports.rotation.resume_after()
    ring = rotate(sorted(ports.symbols.symbols(), key=lambda d: d.symbol), report.started_after)
    report.symbols_total = len(ring)
    outcomes = _evaluate_ring(ring, ports, policy, owner, budget, report)
    prefix = next((i for i, o in enumerate(outcomes) if o is not _Outcome.DONE), len(outcomes))
    finished = sum(o is _Outcome.DONE for o in outcomes)
    report.out_of_time = finished < len(ring)
    report.symbols_remaining = len(ring) - finished
    if prefix:
        report.resume_after = ring[prefix - 1].symbol
        ports.rotation.save(report.resume_after, ports.clock())
    else:
        report.resume_after = report.started_after
    report.seconds = budget.elapsed()
    if report.out_of_time:
        log.warning(
            "run out of time: %d of %d symbols finished, %d left for the next runs",
            finished,
            len(ring),
            report.symbols_remaining,
        )
    return report


def _evaluate_ring(
    ring: Sequence[DurableSymbol],
    ports: Ports,
    policy: Policy,
    owner: str,
    budget: Budget,
    report: RunReport,
) -> list[_Outcome | None]:
    """Each symbol's outcome, in ring order; None: not started (the budget was spent)."""
    outcomes: list[_Outcome | None] = [None] * len(ring)

    def one(index: int) -> tuple[_Outcome, RunReport]:
        part = RunReport()
        # The first symbol runs whatever the budget: every run moves the rotation on.
        return _run_found(ring[index], ports, policy, owner, part, budget, first=index == 0), part

    def record(index: int, result: tuple[_Outcome, RunReport]) -> bool:
        outcomes[index], part = result
        _merge(report, part)
        return outcomes[index] is not _Outcome.OUT_OF_TIME

    workers = max(1, policy.workers)
    if workers == 1:
        for index in range(len(ring)):
            if index and budget.exhausted():
                break
            if not record(index, one(index)):
                break
        return outcomes
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="symbol") as pool:
        in_flight: dict[Future[tuple[_Outcome, RunReport]], int] = {}
        index, stopping = 0, False
        while in_flight or (index < len(ring) and not stopping):
            while index < len(ring) and len(in_flight) < workers and not stopping:
                if index and budget.exhausted():
                    stopping = True
                    break
                in_flight[pool.submit(one, index)] = index
                index += 1
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                if not record(in_flight.pop(future), future.result()):
                    stopping = True
    return outcomes


def _merge(report: RunReport, part: RunReport) -> None:
    report.symbols += part.symbols
    report.rows += part.rows
    report.crossings_sent += part.crossings_sent
    report.anomaly_alerts_sent += part.anomaly_alerts_sent
    report.already_sent += part.already_sent
    report.deferred += part.deferred
    report.skipped += part.skipped
    report.failed |= part.failed


def _run_found(
    found: DurableSymbol,
    ports: Ports,
    policy: Policy,
    owner: str,
    report: RunReport,
    budget: Budget,
    *,
    first: bool,
) -> _Outcome:
    symbol = found.symbol
    if found.error is not None:
        log.error("symbol %s not evaluated: %s", symbol, found.error)
        report.failed[symbol] = found.error
        return _Outcome.DONE
    if found.watermark is None:
        report.skipped.append(symbol)  # no window saved: nothing known to be written
        return _Outcome.DONE
    report.symbols += 1
    try:
        return _run_symbol(symbol, found.watermark, ports, policy, owner, report, budget, first)
    except Exception as exc:  # one symbol's trouble must not starve the others
        log.exception("symbol %s failed", symbol)
        report.failed[symbol] = f"{type(exc).__name__}: {exc}"
        return _Outcome.DONE


def _run_symbol(
    symbol: str,
    watermark: str,
    ports: Ports,
    policy: Policy,
    owner: str,
    report: RunReport,
    budget: Budget,
    first: bool,
) -> _Outcome:
    """``first``: the run's first symbol is finished whatever the budget (the safety margin
    absorbs it). It is where the next run would start again, so a symbol whose evaluation
    alone outlasts the budget would otherwise hold the rotation, and every symbol after it,
    forever; this way every run moves the rotation on by at least one symbol."""
    cursor = ports.cursors.load(symbol) or SymbolCursor()
    settled_until = ports.clock() - policy.settle
    caught_up = cursor.row_ts is not None and cursor.row_ts >= watermark
    # Caught up: no Query (most symbols between two runs); the clock may still close a window.
    rows = () if caught_up else ports.rows.rows_between(symbol, cursor.row_ts, watermark)
    result = evaluate(symbol, cursor, rows, settled_until, policy.cooldown)
    report.rows += result.rows
    for alert in result.alerts:
        if not first and budget.exhausted():
            return _Outcome.OUT_OF_TIME  # cursor not saved: the next run re-finds the rest
        if not _deliver(symbol, alert, ports, policy, owner, report):
            report.deferred.append(symbol)
            return _Outcome.DONE
    if result.changed:
        ports.cursors.advance(symbol, result.cursor, ports.clock())
    return _Outcome.DONE


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
