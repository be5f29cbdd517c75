"""Bounded retries with exponential backoff and full jitter, for the calls the processor makes
itself (the checkpoint). boto3's own calls are retried by botocore (core/aws.py).

Full jitter (a uniform draw in [0, min(cap, base * 2**n)]) spreads the retries of the many
shard processors that a throttled lease table refused together. The retries stop when the
next wait would end past the budget: the caller then fails (the process exits and the
daemon's replacement resumes at the last checkpoint, see README "When AWS fails for longer").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 0.2
    cap_s: float = 5.0
    budget_s: float = 20.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delays(self, clock: Callable[[], float]) -> Iterator[float]:
        """The waits before each retry, while they fit in the budget (counted from the first
        call, with ``clock`` in seconds)."""
        deadline = clock() + self.budget_s
        attempt = 0
        while True:
            delay = self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))
            if clock() + delay > deadline:
                return
            yield delay
            attempt += 1
