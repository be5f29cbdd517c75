"""Hundreds of symbols on moto, a budget that covers a small part of them per run: rows arrive
in several consumer commits while the rotation goes round, and across all the runs every
crossing is alerted exactly once - none repeated, none missed - against the TA-Lib oracle over
the whole row set. The budget is spent by a cost per symbol on an injected timer (no sleeping),
so where each run stops is exact; the last symbol of a run is often cut between two alerts."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter

import pytest

from tests.trend.conftest import FixedClock, Stack, alert_identity
from tests.trend.fakes import CostlyCursors, CostTimer
from tests.trend.helpers import Identity, oracle_crossings, synthetic_rows
from trend.budget import Budget
from trend.runner import RunReport, run_once

COST = 0.25  # seconds a symbol on the injected timer


@pytest.mark.parametrize(
    ("symbols", "per_symbol", "per_run"),
    [(120, 32, 15), pytest.param(400, 40, 30, marks=pytest.mark.slow)],
)
def test_every_crossing_once_across_rotating_runs(
    stack: Stack, symbols: int, per_symbol: int, per_run: int
) -> None:
    rows = synthetic_rows(symbols, per_symbol, seed=symbols)
    names = sorted({r.symbol for r in rows})
    timer = CostTimer()
    clock = FixedClock(rows[0].ts)
    base = stack.ports(clock)
    cursors = CostlyCursors(base.cursors, timer, COST)
    ports = dataclasses.replace(base, cursors=cursors)
    sent: Counter[Identity] = Counter()
    reports: list[RunReport] = []

    def run() -> RunReport:
        report = run_once(
            ports, stack.policy(), f"run-{len(reports)}", Budget(per_run * COST, timer)
        )
        assert not report.failed and not report.deferred
        reports.append(report)
        sent.update(i for i in map(alert_identity, stack.received()) if i[2] != "anomaly")
        return report

    # Rows arrive in four commits; between two commits the runs reach only part of the ring.
    commits = 4
    step = len(rows) // commits
    for k in range(commits):
        chunk = rows[k * step : (k + 1) * step if k < commits - 1 else len(rows)]
        stack.write_rows(chunk)
        clock.now = chunk[-1].ts
        for _ in range(3):
            report = run()
            assert report.out_of_time and not report.complete
            assert report.symbols_total == len(names)
    # Then the rotation goes on: within ceil(N / (per_run - 1)) runs every symbol is reached
    # (each run finishes at least per_run - 1: only its last may be cut between two alerts).
    bound = math.ceil(len(names) / (per_run - 1))
    start = len(cursors.loaded)
    for _ in range(bound):
        run()
    assert set(cursors.loaded[start:]) == set(names)
    for _ in range(bound):  # a second pass: whatever the first cut short is delivered now
        run()
    assert max(sent.values()) == 1  # none repeated
    expected = oracle_crossings(rows)
    assert len(expected) > len(names) // 2  # plenty, over many symbols
    assert set(sent) == expected  # none missed, none invented
    # Each run started right after the symbol the previous one finished with.
    for before, after in itertools.pairwise(reports):
        assert after.started_after == before.resume_after
