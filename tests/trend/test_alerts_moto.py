"""The alerting against moto: DynamoDB tables, the SNS topic and an SQS queue subscribed to it
that captures every message. A real price series (bokeh-stocks through the consumer's pipeline)
is written as the consumer writes it; the alerts must be exactly the crossings ``stockpipe
trend`` finds, once each, whatever the schedule, with retries, crashes and overlapping runs."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.contracts.row import EnrichedRow
from tests.trend.conftest import FixedClock, Stack, alert_identity, dataset_rows, subscribe_queue
from tests.trend.fakes import Crash, FailingPublisher
from tests.trend.helpers import crossings_by_stockpipe_trend
from trend.runner import run_once
from trend.sns import SnsPublisher

CUT = datetime(2000, 5, 1, tzinfo=UTC)  # the first 2 months: AAPL, IBM, MSFT (126 rows)


def _slice(until: datetime = CUT) -> tuple[EnrichedRow, ...]:
    return tuple(r for r in dataset_rows() if r.ts < until)


def _crossings(notifications: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [i for i in map(alert_identity, notifications) if i[2] != "anomaly"]


def _write_and_run(stack: Stack, rows: tuple[EnrichedRow, ...], batch: int) -> list[dict[str, Any]]:
    clock = FixedClock(rows[0].ts)
    delivered: list[dict[str, Any]] = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        stack.write_rows(chunk)
        clock.now = chunk[-1].ts
        report = stack.run(clock, owner=f"run-{start}")
        assert not report.failed and not report.deferred
        delivered += stack.received()  # drained as it goes: moto's SQS is O(queue) per call
    return delivered


@pytest.mark.slow
def test_alerts_equal_stockpipe_trend_on_real_series(stack: Stack, tmp_path: Path) -> None:
    rows = _slice(datetime(2001, 1, 1, tzinfo=UTC))
    delivered = _write_and_run(stack, rows, len(rows))
    expected = crossings_by_stockpipe_trend(rows, tmp_path)
    assert len(expected) >= 20
    got = _crossings(delivered)
    assert sorted(got) == sorted(expected)  # same symbols, times, signals; none missing/extra
    assert len(set(got)) == len(got)
    identities = [alert_identity(n) for n in delivered]
    assert len(set(identities)) == len(identities)
    assert any(i[2] == "anomaly" for i in identities)


@pytest.mark.parametrize(
    "batch", [pytest.param(1, marks=pytest.mark.slow), 7, 10_000], ids=["every-row", "7", "end"]
)
def test_schedules_give_identical_alert_sets(stack: Stack, batch: int, tmp_path: Path) -> None:
    rows = _slice()
    delivered = _write_and_run(stack, rows, batch)
    assert sorted(_crossings(delivered)) == sorted(crossings_by_stockpipe_trend(rows, tmp_path))
    # The whole alert set (anomaly digests included, with their exact text) is schedule-free.
    texts = sorted(json.loads(n["Message"])["summary"] for n in delivered)
    reference = getattr(test_schedules_give_identical_alert_sets, "reference", None)
    if reference is None:
        test_schedules_give_identical_alert_sets.reference = texts  # type: ignore[attr-defined]
    else:
        assert texts == reference


def test_second_run_sends_nothing(stack: Stack) -> None:
    rows = _slice()
    first = _write_and_run(stack, rows, len(rows))
    report = stack.run(FixedClock(rows[-1].ts), owner="again")
    assert first and report.sent == 0 and stack.received() == []


class _SerializedClient:
    """DynamoDB applies one conditional write to an item atomically; moto in-process does not
    lock, so concurrent threads get that guarantee here by serialising each API call."""

    def __init__(self, inner: Any) -> None:
        self._inner, self._lock = inner, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name == "get_paginator":
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def test_concurrent_runs_send_each_alert_once(stack: Stack) -> None:
    rows = _slice()
    stack.write_rows(rows)
    clock = FixedClock(rows[-1].ts)
    client = _SerializedClient(stack.dynamodb)
    # get_paginator bypasses the wrapper; queries are reads, so that is harmless.
    reports = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        ports = stack.ports(clock, dynamodb=client)
        barrier.wait()
        reports.append(run_once(ports, stack.policy(), owner=f"worker-{n}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delivered = [alert_identity(n) for n in stack.received()]
    assert delivered and len(delivered) == len(set(delivered))
    # A run that met a live lease deferred the symbol; the next run completes it, no doubles.
    stack.run(clock, owner="after")
    delivered += [alert_identity(n) for n in stack.received()]
    assert len(delivered) == len(set(delivered))
    assert set(delivered) == _reference(rows)  # none lost either
    assert sum(r.sent for r in reports) + sum(r.already_sent for r in reports) >= 1


def _clean_alert_set(stack: Stack, rows: tuple[EnrichedRow, ...]) -> Counter[tuple[str, str, str]]:
    return Counter(alert_identity(n) for n in _write_and_run(stack, rows, len(rows)))


def test_publish_failure_then_retry_loses_and_doubles_nothing(stack: Stack) -> None:
    rows = _slice()
    stack.write_rows(rows)
    clock = FixedClock(rows[-1].ts)
    real = SnsPublisher(stack.sns, stack.settings.alerts_topic_arn or "")
    failing = FailingPublisher(real, ok=3, exc=RuntimeError("SNS throttled"))
    report = stack.run(clock, owner="first", publisher=failing)
    assert report.failed  # every symbol after the 3rd publish failed (raised, released)
    report = stack.run(clock, owner="retry")  # immediately: released leases are free
    assert not report.failed and not report.deferred
    got = Counter(alert_identity(n) for n in stack.received())
    assert max(got.values()) == 1
    assert set(got) == set(_reference(rows))


def test_crash_between_claim_and_publish_then_retry(stack: Stack) -> None:
    rows = _slice()
    stack.write_rows(rows)
    clock = FixedClock(rows[-1].ts)
    real = SnsPublisher(stack.sns, stack.settings.alerts_topic_arn or "")
    with pytest.raises(Crash):  # the process dies after claiming its 3rd alert
        stack.run(clock, owner="crashed", publisher=FailingPublisher(real, ok=2, exc=Crash()))
    # Retried at once: the crashed run's lease is live, so that symbol waits (not lost: its
    # cursor did not move); the others complete.
    report = stack.run(clock, owner="retry-1")
    assert report.deferred
    clock.now += stack.policy().lease + timedelta(seconds=1)  # the lease lapses
    report = stack.run(clock, owner="retry-2")
    assert not report.deferred and not report.failed
    got = Counter(alert_identity(n) for n in stack.received())
    assert max(got.values()) == 1
    assert set(got) == set(_reference(rows, clock.now))


def _reference(
    rows: tuple[EnrichedRow, ...], now: datetime | None = None
) -> set[tuple[str, str, str]]:
    """The alert set of one clean run in a fresh in-memory world (same runner, no faults)."""
    from tests.trend.fakes import (
        MemoryCursors,
        MemoryLedger,
        MemoryRotation,
        MemoryRows,
        RecordingPublisher,
    )
    from trend.runner import Policy, Ports

    table, publisher = MemoryRows(), RecordingPublisher()
    table.write(rows)
    clock = FixedClock(now or rows[-1].ts)
    ports = Ports(table, table, MemoryCursors(), MemoryLedger(), publisher, clock, MemoryRotation())
    policy = Policy(timedelta(days=7), timedelta(minutes=15), timedelta(0))
    run_once(ports, policy, "reference")
    return {
        (m.attributes["symbol"], m.key.split("#")[0], m.attributes["signal"])
        for m in publisher.messages
    }


def test_filter_policy_attributes_reach_subscribers(stack: Stack) -> None:
    only_ibm = subscribe_queue(
        stack.sns, stack.sqs, stack.settings.alerts_topic_arn or "", "ibm-only", {"symbol": ["IBM"]}
    )
    rows = _slice()
    delivered = _write_and_run(stack, rows, len(rows))
    for notification in delivered:
        attrs = notification["MessageAttributes"]
        assert set(attrs) == {"symbol", "signal", "severity"}
        assert attrs["signal"]["Value"] in {"golden_cross", "death_cross", "anomaly"}
        assert attrs["severity"]["Value"] in {"info", "warning", "critical"}
        assert len(notification["Subject"]) < 100
    filtered = stack.received(only_ibm)
    assert filtered and {alert_identity(n)[0] for n in filtered} == {"IBM"}
    assert len(filtered) == sum(1 for n in delivered if alert_identity(n)[0] == "IBM")
