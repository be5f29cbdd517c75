"""The sink benchmarks' parts: they run (tiny sizes, no timing asserted), the null endpoint
answers botocore as AWS would, and the figures' arithmetic (percentiles, RSS) is right."""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

import pytest

from producer.synthetic import synthetic_ticks
from stockpipe.bench.catchup import backlog, bench_catchup, bench_per_record
from stockpipe.bench.services import services
from stockpipe.bench.steady import percentile, tree_rss_mib


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100: the p-th percentile is p
    assert [percentile(values, p) for p in (1, 50, 99, 100)] == [1.0, 50.0, 99.0, 100.0]
    assert percentile([7.0], 99) == 7.0


def test_rss_of_a_process_tree_counts_this_process() -> None:
    own = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    rss, processes = tree_rss_mib(os.getpid())
    assert processes >= 1
    assert rss >= own / 1024 * 0.5  # the tree holds at least this process (RSS moves a bit)


@pytest.mark.parametrize("backend", ["null", "moto"])
def test_catchup_commits_the_whole_backlog_through_the_proxy(backend: str, tmp_path: Path) -> None:
    records = backlog(1_200, symbols=7, seed=3)
    with services(1.0, tmp_path / backend, backend=backend) as running:
        result = bench_catchup(running, records, 500, 500, 4, "t")
        per_record = bench_per_record(running, list(islice(synthetic_ticks(3, 3), 5)), "per-record")
        if backend == "moto":  # moto stores: every row is there, once
            client = running.client("dynamodb", direct=True)
            count = client.scan(TableName="bench-t-rows", Select="COUNT")["Count"]
            assert count == 1_200
    assert result.ticks == 1_200
    assert result.commits == 3  # 500, 500, and the 200 left at shutdown
    assert len(result.timings.steps["rows"]) == 3
    assert per_record.ticks == 5
