"""``stockpipe bench alerts``: the composition of time to alert against the formula it prints
(computed here independently), and a tiny run of the whole code path on the local stack. Not
a benchmark: no figure is asserted, only that the path works and reports sane numbers."""

from __future__ import annotations

import pytest

from stockpipe.bench.alerts import LAMBDA_BUDGET_SECONDS, time_to_alert
from trend.runner import SAFETY_MARGIN_SECONDS


def test_time_to_alert_follows_the_printed_formula() -> None:
    # Every alert 5 s into its run; 100 symbols at 10 a run: 0..9 runs waited, uniformly.
    # Total = U[0,10) + U[0,60) + 60 x U{0..9} + 5: mean 5 + 35 + 270 = 310, symmetric, so the
    # median is about 310; the 99th percentile is below the maximum 5 + 10 + 60 + 540 = 615.
    p50, p99 = time_to_alert([(0, 5.0), (9, 5.0)], 100, 10, 10.0, 50_000, 3)
    assert abs(p50 - 310) < 8
    assert 555 < p99 < 615
    # Everything in one run: no rotation wait; the offset is that of the nearest place.
    p50, p99 = time_to_alert([(0, 1.0), (99, 41.0)], 100, 100, 0.000001, 50_000, 3)
    assert 1 + 30 - 8 < p50 < 41 + 30 + 8
    assert p99 < 41 + 60


def test_the_bench_budget_is_the_deployed_lambdas() -> None:
    stack = pytest.importorskip("deploy.stockpipe_stack")
    assert stack.TREND_TIMEOUT_SECONDS - SAFETY_MARGIN_SECONDS == LAMBDA_BUDGET_SECONDS


@pytest.mark.slow
def test_bench_alerts_runs_on_the_local_stack(capsys: pytest.CaptureFixture[str]) -> None:
    from stockpipe.cli import main

    argv = ["bench", "alerts", "--symbols", "60", "--reference", "30", "--budget", "30"]
    assert main([*argv, "--crossing-every", "6", "--samples", "2000"]) == 0
    out = capsys.readouterr().out
    assert "bench alerts 60 symbols, measured on moto:" in out
    assert "10 crossing alerts sent" in out and "5 crossing alerts sent" in out  # every 6th
    assert "bench alerts 60 symbols at the 30-symbol run's cost per symbol:" in out
    assert "runs to cover all 1;" in out
    assert "command: stockpipe bench alerts --symbols 60 --reference 30 --budget 30" in out
