"""A run's time allowance: how long it may keep starting work, on a monotonic timer.

The Lambda builds one from its context (remaining time minus a safety margin, see
trend/handlers.py); ``stockpipe alerts run-once --time-budget`` from the command line. The
timer is injectable so tests spend a budget deterministically (a cost per symbol, no sleeping).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Budget:
    __slots__ = ("_start", "_timer", "seconds")

    def __init__(self, seconds: float | None, timer: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds  # None: no limit
        self._timer = timer
        self._start = timer()

    def elapsed(self) -> float:
        return self._timer() - self._start

    def exhausted(self) -> bool:
        return self.seconds is not None and self.elapsed() >= self.seconds
