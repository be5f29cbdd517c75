"""Exceptions of the trend package: one base class, each carrying what a reader needs."""

from __future__ import annotations

from core.errors import StockpipeError


class TrendError(StockpipeError):
    """Base class of every error raised by ``trend``."""


class ConfigError(TrendError):
    """A setting the alerting needs is missing or wrong; the message names it and the fix."""


class CorruptCursor(TrendError):
    """A cursor item that cannot be decoded: evaluating from scratch would re-alert, so stop."""

    def __init__(self, symbol: str, detail: str) -> None:
        super().__init__(
            f"cursor of {symbol!r} cannot be decoded ({detail}); inspect the item in the cursor "
            "table: delete it only if re-alerting the symbol's history is acceptable"
        )
        self.symbol = symbol


class CorruptState(TrendError):
    """A state item of the consumer whose window cannot be decoded: the symbol's watermark is
    unknown, so none of its rows can be evaluated safely."""

    def __init__(self, symbol: str, detail: str) -> None:
        super().__init__(
            f"state item of {symbol!r} has a window that cannot be decoded ({detail}); the "
            "consumer writes it (consumer/sinks/state_store.py): inspect the item there"
        )
        self.symbol = symbol


class RunIncomplete(TrendError):
    """Some symbols failed this run. Everything done is durable and idempotent, so the
    scheduler's retry (raised for, on purpose) resumes them without doubling any alert."""

    def __init__(self, failed: dict[str, str]) -> None:
        listed = "; ".join(f"{symbol}: {reason}" for symbol, reason in sorted(failed.items()))
        super().__init__(f"{len(failed)} symbol(s) failed, retry resumes them: {listed}")
        self.failed = failed
