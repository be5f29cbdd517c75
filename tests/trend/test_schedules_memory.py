"""The whole real dataset, the runner over in-memory seams (same conditional semantics as
DynamoDB): every crossing alerted once at any schedule, and anomalies grouped identically."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.trend.conftest import FixedClock, dataset_rows
from tests.trend.fakes import (
    MemoryCursors,
    MemoryLedger,
    MemoryRotation,
    MemoryRows,
    RecordingPublisher,
)
from tests.trend.helpers import crossings_by_stockpipe_trend
from trend.runner import Policy, Ports, run_once

POLICY = Policy(cooldown=timedelta(days=7), lease=timedelta(minutes=15), settle=timedelta(0))


def _run_schedule(batch: int) -> list[tuple[str, str, str, str]]:
    """Write the dataset ``batch`` rows at a time, a run after each; 'now' is the newest row."""
    rows = dataset_rows()
    table, publisher = MemoryRows(), RecordingPublisher()
    clock = FixedClock(rows[0].ts)
    ports = Ports(table, table, MemoryCursors(), MemoryLedger(), publisher, clock, MemoryRotation())
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        table.write(chunk)
        clock.now = chunk[-1].ts
        report = run_once(ports, POLICY, owner=f"run-{start}")
        assert not report.failed and not report.deferred
    # Publication order depends on the schedule (symbol by symbol each run); the set must not.
    return sorted(
        (m.attributes["symbol"], m.key, m.attributes["signal"], m.sms) for m in publisher.messages
    )


@pytest.fixture(scope="module")
def at_end() -> list[tuple[str, str, str, str]]:
    return _run_schedule(len(dataset_rows()))


def test_crossing_alerts_equal_stockpipe_trend(
    at_end: list[tuple[str, str, str, str]], tmp_path: Path
) -> None:
    expected = crossings_by_stockpipe_trend(dataset_rows(), tmp_path)
    got = [(s, key.split("#")[0], sig) for s, key, sig, _ in at_end if sig != "anomaly"]
    assert len(expected) > 100  # a real series with plenty of crossings
    assert sorted(got) == sorted(expected)
    assert len(set(got)) == len(got)


def test_every_anomaly_row_in_exactly_one_alert(at_end: list[tuple[str, str, str, str]]) -> None:
    anomaly_alerts = [a for a in at_end if a[2] == "anomaly"]
    assert anomaly_alerts
    per_symbol: dict[str, list[str]] = {}
    for symbol, key, _, _ in anomaly_alerts:
        per_symbol.setdefault(symbol, []).append(key.split("#")[0])
    for symbol, times in per_symbol.items():
        assert times == sorted(times)
        stamps = [datetime.fromisoformat(t) for t in times]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert all(g >= POLICY.cooldown for g in gaps), symbol  # cooldown respected


@pytest.mark.parametrize("batch", [1, 7, 500])
def test_any_schedule_same_alerts(batch: int, at_end: list[tuple[str, str, str, str]]) -> None:
    assert _run_schedule(batch) == at_end


def _run_in_flight_schedule(batch: int, seed: int) -> list[tuple[str, str, str, str]]:
    """As the consumer really commits: each flush's rows land in random order, with a run while
    only some are written and another when all are but the state is not saved yet; then the
    state, then a run. 'Now' is the newest committed row (the settle margin: rows older than
    now - settle are written, which the consumer's flush interval keeps true)."""
    rows = dataset_rows()
    rng = random.Random(seed)
    table, publisher = MemoryRows(), RecordingPublisher()
    clock = FixedClock(rows[0].ts)
    ports = Ports(table, table, MemoryCursors(), MemoryLedger(), publisher, clock, MemoryRotation())
    for start in range(0, len(rows), batch):
        chunk = list(rows[start : start + batch])
        landed = rng.sample(chunk, len(chunk))
        cut = rng.randint(0, len(chunk))
        for part in (landed[:cut], landed[cut:]):
            table.put_rows(part)
            report = run_once(ports, POLICY, owner=f"run-{start}-in-flight")
            assert not report.failed and not report.deferred
        table.save_state(chunk)
        clock.now = chunk[-1].ts
        report = run_once(ports, POLICY, owner=f"run-{start}")
        assert not report.failed and not report.deferred
    return sorted(
        (m.attributes["symbol"], m.key, m.attributes["signal"], m.sms) for m in publisher.messages
    )


@pytest.mark.parametrize(("batch", "seed"), [(7, 1), (64, 2), (500, 3)])
def test_flushes_in_flight_same_alerts(
    batch: int, seed: int, at_end: list[tuple[str, str, str, str]]
) -> None:
    assert _run_in_flight_schedule(batch, seed) == at_end
