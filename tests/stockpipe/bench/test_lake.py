"""The lake benchmark runs small, both layouts give the same answer, and Parquet reads less."""

from __future__ import annotations

from pathlib import Path

from stockpipe.bench.lake import bench_lake, describe


def test_bench_lake_small(tmp_path: Path) -> None:
    result = bench_lake(tmp_path, days=2, rate=1, symbols=20, shards=2)
    assert result.rows == 2 * 86_400
    assert result.answer[0] == 86_400 // 20  # the symbol's ticks that day, on both layouts
    assert result.parquet_read_bytes < result.unsorted_read_bytes < result.json_day_bytes
    assert "extrapolated" in "\n".join(describe(result))
