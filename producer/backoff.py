"""Exponential backoff with full jitter, shared by the Kinesis writer and the yfinance poller.

Full jitter (a uniform draw in [0, base·2^n], capped) spreads retries of many producers
that failed together, so they do not hit the throttled shard or Yahoo in lockstep again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.05
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return self.rng.uniform(0.0, ceiling)
