"""``stockpipe bench memory`` runs, and the eviction it measures keeps the windows bounded."""

from __future__ import annotations

from stockpipe.bench.memory import run_one


def test_bench_memory_small() -> None:
    evicting = run_one(symbols=3000, rounds=2, max_windows=500, flush=400, batch=100)
    keeping = run_one(symbols=3000, rounds=2, max_windows=10**9, flush=400, batch=100)
    assert evicting.resident_windows <= 500 + 400
    assert keeping.resident_windows == 3000
    assert evicting.commits == keeping.commits == 6000 // 400
    assert evicting.peak_rss_mib > 0 and evicting.commit_max_ms >= evicting.commit_mean_ms
