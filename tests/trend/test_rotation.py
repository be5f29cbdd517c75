"""Fair rotation (trend/runner.py): with more symbols than a run's budget covers, consecutive
runs start where the last one stopped, so every symbol is evaluated within the bound and every
crossing is alerted once - checked on the in-memory seams (the same semantics as DynamoDB;
tests/trend/test_many_symbols_moto.py runs the same on moto).

The budget is spent by a cost per symbol on an injected timer, so a run stops after an exact
number of symbols, whatever the machine."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from datetime import timedelta

import pytest

from tests.trend.conftest import FixedClock
from tests.trend.fakes import (
    CostlyCursors,
    CostTimer,
    MemoryCursors,
    MemoryLedger,
    MemoryRotation,
    MemoryRows,
    RecordingPublisher,
)
from tests.trend.helpers import Identity, oracle_crossings, synthetic_rows
from trend.budget import Budget
from trend.ports import DurableSymbol
from trend.runner import Policy, Ports, RunReport, rotate, run_once

POLICY = Policy(cooldown=timedelta(days=7), lease=timedelta(minutes=15), settle=timedelta(0))
COST = 0.25  # seconds a symbol; binary-exact, so budget / COST symbols start, no rounding


def _ring(names: str, after: str | None) -> str:
    return "".join(d.symbol for d in rotate([DurableSymbol(n, "w") for n in names], after))


def test_ring_starts_after_the_saved_symbol_even_a_vanished_one() -> None:
    assert _ring("ABCDE", None) == "ABCDE"
    assert _ring("ABCDE", "B") == "CDEAB"
    assert _ring("ABCDE", "E") == "ABCDE"
    assert _ring("ACE", "B") == "CEA"  # B was delisted: start at the next one
    assert _ring("ACE", "Z") == "ACE"


class World:
    def __init__(self, symbols: int, per_symbol: int, seed: int) -> None:
        self.rows = synthetic_rows(symbols, per_symbol, seed)
        self.names = sorted({r.symbol for r in self.rows})
        self.table, self.publisher = MemoryRows(), RecordingPublisher()
        self.timer = CostTimer()
        self.cursors = CostlyCursors(MemoryCursors(), self.timer, COST)
        self.rotation = MemoryRotation()
        self.clock = FixedClock(self.rows[0].ts)
        self.ledger = MemoryLedger()

    def run(self, per_run: int) -> RunReport:
        ports = Ports(
            self.table,
            self.table,
            self.cursors,
            self.ledger,
            self.publisher,
            self.clock,
            self.rotation,
        )
        report = run_once(ports, POLICY, "run", Budget(per_run * COST, self.timer))
        assert not report.failed and not report.deferred
        return report

    def sent(self) -> Counter[Identity]:
        return Counter(
            (m.attributes["symbol"], m.key.split("#")[0], m.attributes["signal"])
            for m in self.publisher.messages
            if m.attributes["signal"] != "anomaly"
        )


@pytest.mark.parametrize("per_run", [1, 7, 40])
def test_consecutive_runs_cover_every_symbol_within_the_bound(per_run: int) -> None:
    world = World(symbols=240, per_symbol=45, seed=per_run)
    world.table.write(world.rows)
    world.clock.now = world.rows[-1].ts
    # A run starts exactly ``per_run`` symbols; its last may stop between two alerts (then the
    # next run starts with it), so each run finishes at least per_run - 1, and always its
    # first symbol (the rotation never stalls).
    finishing = max(per_run - 1, 1)
    bound = math.ceil(len(world.names) / finishing)
    previous = None
    for _ in range(bound):
        start = len(world.cursors.loaded)
        report = world.run(per_run)
        assert report.symbols_total == len(world.names)
        assert report.out_of_time and not report.complete
        assert report.started_after == previous
        assert report.symbols_total - report.symbols_remaining >= finishing
        # The run began right after the symbol the previous one finished with.
        first = world.cursors.loaded[start]
        after = world.names.index(previous) + 1 if previous is not None else 0
        assert first == world.names[after % len(world.names)]
        previous = report.resume_after
    assert set(world.cursors.loaded) == set(world.names)  # all evaluated within the bound
    for _ in range(bound):  # a second pass: everything found in the first is delivered
        world.run(per_run)
    sent = world.sent()
    assert max(sent.values()) == 1  # none repeated
    assert set(sent) == oracle_crossings(world.rows)  # none missed, none invented


def test_a_run_with_budget_for_all_is_complete() -> None:
    world = World(symbols=30, per_symbol=25, seed=3)
    world.table.write(world.rows)
    world.clock.now = world.rows[-1].ts
    report = world.run(per_run=1_000)
    assert report.complete and not report.out_of_time
    assert report.symbols == report.symbols_total == 30 and report.symbols_remaining == 0
    assert set(world.sent()) == oracle_crossings(world.rows)


def test_threaded_runs_cover_every_symbol_and_alert_each_crossing_once() -> None:
    """Eight symbols at a time (the Lambda's default): which symbols finish before the budget
    is spent is up to the threads, but the rotation resumes after the finished prefix, so
    nothing is skipped, and each alert still goes out once."""
    world = World(symbols=200, per_symbol=40, seed=5)
    world.table.write(world.rows)
    world.clock.now = world.rows[-1].ts
    threaded = dataclasses.replace(POLICY, workers=8)
    reports = []
    for _ in range(30):
        ports = Ports(
            world.table,
            world.table,
            world.cursors,
            world.ledger,
            world.publisher,
            world.clock,
            world.rotation,
        )
        reports.append(run_once(ports, threaded, "threads", Budget(20 * COST, world.timer)))
        assert not reports[-1].failed and not reports[-1].deferred
    assert all(r.out_of_time for r in reports[:5])
    for before, after in itertools.pairwise(reports):
        assert after.started_after == before.resume_after
    assert set(world.cursors.loaded) == set(world.names)
    sent = world.sent()
    assert max(sent.values()) == 1
    assert set(sent) == oracle_crossings(world.rows)
