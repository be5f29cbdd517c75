"""The latency shapes: draws checked against the stated distribution (statistics over many
draws, computed here, not by the module)."""

from __future__ import annotations

import random
import statistics

import pytest

from stockpipe.local.latency import Latency, LatencyConfigError


def _draws(latency: Latency, count: int = 40_000) -> list[float]:
    draw = latency.sampler(random.Random(3))
    return sorted(draw() * 1000 for _ in range(count))


def test_fixed() -> None:
    assert set(_draws(Latency(20), 100)) == {20.0}


def test_uniform_stays_in_its_range_with_its_mean() -> None:
    values = _draws(Latency(20, 5))
    assert values[0] >= 15 and values[-1] <= 25
    assert statistics.fmean(values) == pytest.approx(20, abs=0.1)
    assert statistics.pstdev(values) == pytest.approx(
        10 / 12**0.5, rel=0.03
    )  # U(a,b): (b-a)/sqrt 12


def test_lognormal_has_the_stated_median_and_p99() -> None:
    values = _draws(Latency(20, p99_ms=80))
    cut = statistics.quantiles(values, n=100)
    assert cut[49] == pytest.approx(20, rel=0.03)
    assert cut[98] == pytest.approx(80, rel=0.08)
    assert values[0] > 0


@pytest.mark.parametrize(
    "args",
    [(-1.0,), (10.0, 11.0), (10.0, 0.0, 5.0), (0.0, 0.0, 5.0), (10.0, 2.0, 50.0), (float("nan"),)],
)
def test_bad_shapes_are_refused(args: tuple[float, ...]) -> None:
    with pytest.raises(LatencyConfigError):
        Latency(*args)
