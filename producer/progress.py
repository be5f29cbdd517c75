"""What a running producer reports: a one-line progress display on a terminal, a periodic
JSON ``progress`` event otherwise, and the final summary either way."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Final, TextIO

from producer.writer import WriterStats

log: Final = logging.getLogger("stockpipe.producer")


class Progress:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        # A terminal can take a redraw twice a second; a log store wants a line now and then.
        self.every = every if every is not None else (0.5 if self.tty else 10.0)
        self._clock = clock
        self.started = clock()
        self._last = self.started
        self._drawn = False

    def elapsed(self) -> float:
        return self._clock() - self.started

    def update(self, stats: WriterStats, pending: int) -> None:
        now = self._clock()
        if now - self._last < self.every:
            return
        self._last = now
        rate = stats.sent / max(now - self.started, 1e-9)
        if self.tty:
            self.stream.write(
                f"\rsent {stats.sent:,}  {rate:,.0f} rec/s  retries {stats.retries:,}  "
                f"lost {stats.lost:,}  pending {pending:,}   "
            )
            self.stream.flush()
            self._drawn = True
        else:
            log.info("progress", extra={"fields": _fields(stats, pending, now - self.started)})

    def finish(self, stats: WriterStats, pending: int) -> None:
        if self._drawn:
            self.stream.write("\n")
        elapsed = self.elapsed()
        level = logging.ERROR if stats.lost else logging.INFO
        log.log(level, "finished", extra={"fields": _fields(stats, pending, elapsed)})


def _fields(stats: WriterStats, pending: int, elapsed: float) -> dict[str, object]:
    return {
        "sent": stats.sent,
        "per_second": round(stats.sent / max(elapsed, 1e-9), 1),
        "retries": stats.retries,
        "lost": stats.lost,
        "pending": pending,
        "calls": stats.calls,
        "elapsed_s": round(elapsed, 3),
    }
