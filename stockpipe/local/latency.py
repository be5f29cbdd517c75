"""The delay the local proxy adds to each request, before forwarding it: AWS-like round trips.

Three shapes, stated in ``describe()`` and the CLI help:
- fixed: ``median_ms`` every time;
- uniform: ``median_ms ± jitter_ms`` (uniform on [median - jitter, median + jitter]; jitter may
  not exceed the median, so the mean stays the median);
- lognormal: median ``median_ms`` and 99th percentile ``p99_ms`` (sigma = ln(p99/median) /
  z(0.99)), the long right tail real service latencies have.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from core.errors import UsageError

_Z99: Final = 2.3263478740408408  # the standard normal's 99th percentile


class LatencyConfigError(UsageError):
    pass


@dataclass(frozen=True)
class Latency:
    median_ms: float = 0.0
    jitter_ms: float = 0.0
    p99_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("median_ms", "jitter_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise LatencyConfigError(f"latency {name} {value!r} must be a number >= 0")
        if self.jitter_ms > self.median_ms:
            raise LatencyConfigError(
                f"latency jitter {self.jitter_ms:g} ms exceeds the latency {self.median_ms:g} ms; "
                "use a jitter no larger than the latency"
            )
        if self.p99_ms is not None:
            if self.jitter_ms:
                raise LatencyConfigError("give either a latency jitter or a latency p99, not both")
            if not (math.isfinite(self.p99_ms) and self.p99_ms > self.median_ms > 0):
                raise LatencyConfigError(
                    f"latency p99 {self.p99_ms!r} ms must exceed the latency (median) "
                    f"{self.median_ms:g} ms, which must be > 0"
                )

    @property
    def off(self) -> bool:
        return self.median_ms == 0 and self.p99_ms is None

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        """A function returning the next delay in seconds."""
        median = self.median_ms / 1000
        if self.p99_ms is not None:
            mu, sigma = math.log(median), math.log(self.p99_ms / self.median_ms) / _Z99
            return lambda: rng.lognormvariate(mu, sigma)
        if self.jitter_ms:
            low, high = median - self.jitter_ms / 1000, median + self.jitter_ms / 1000
            return lambda: rng.uniform(low, high)
        return lambda: median

    def describe(self) -> str:
        if self.p99_ms is not None:
            return f"lognormal, median {self.median_ms:g} ms, p99 {self.p99_ms:g} ms"
        if self.jitter_ms:
            return f"uniform {self.median_ms:g} ± {self.jitter_ms:g} ms"
        return f"fixed {self.median_ms:g} ms" if self.median_ms else "none"

    def as_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.median_ms,
            "jitter_ms": self.jitter_ms,
            "p99_ms": self.p99_ms,
            "shape": self.describe(),
        }

    @classmethod
    def from_json(cls, data: Any) -> Latency:
        if not isinstance(data, dict) or set(data) - {"latency_ms", "jitter_ms", "p99_ms", "shape"}:
            raise LatencyConfigError(
                'latency: expected {"latency_ms": N, "jitter_ms": J, "p99_ms": P}'
            )
        values = [data.get("latency_ms", 0.0), data.get("jitter_ms", 0.0), data.get("p99_ms")]
        if any(isinstance(v, bool) or not isinstance(v, int | float | None) for v in values):
            raise LatencyConfigError(f"latency: {data!r} has a value that is not a number")
        return cls(
            float(values[0] or 0),
            float(values[1] or 0),
            None if values[2] is None else float(values[2]),
        )
