"""``stockpipe bench core``: decode + validate + enrich per tick on a large interleaved batch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice

from consumer.pipeline import TickPipeline
from core.contracts.tick import encode_tick
from producer.synthetic import synthetic_ticks


@dataclass(frozen=True)
class BenchResult:
    ticks: int
    seconds: float

    @property
    def ticks_per_second(self) -> float:
        return self.ticks / self.seconds

    @property
    def micros_per_tick(self) -> float:
        return self.seconds / self.ticks * 1e6


def bench_core(ticks: int, symbols: int, seed: int, repeat: int) -> BenchResult:
    """Best of ``repeat`` runs, each over the same pre-encoded records (encoding is the
    producer's cost, not the consumer's, so it is outside the timed loop)."""
    records = [encode_tick(t) for t in islice(synthetic_ticks(symbols, seed), ticks)]
    best = float("inf")
    for _ in range(repeat):
        pipeline = TickPipeline()
        apply = pipeline.apply
        started = time.perf_counter()
        for sequence, raw in enumerate(records):
            apply(raw, "shardId-000000000000", str(sequence))
        best = min(best, time.perf_counter() - started)
        if pipeline.counts().accepted != ticks:
            raise AssertionError(f"benchmark data was not all accepted: {pipeline.counts()}")
    return BenchResult(ticks, best)
