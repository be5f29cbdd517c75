"""The produce loop: records from a source into the writer, paced, reported, and shut down
cleanly on SIGINT/SIGTERM (stop reading, flush what is buffered, report)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType

from producer.progress import Progress
from producer.sources import Record
from producer.writer import OrderedBatchWriter, WriterStats


@dataclass(frozen=True)
class RunResult:
    stats: WriterStats
    elapsed: float
    interrupted: bool  # stopped by a signal (after a clean flush)


class Runner:
    def __init__(
        self,
        writer: OrderedBatchWriter,
        progress: Progress,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        self.progress = progress
        self._clock = clock
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def idle(self, seconds: float) -> None:
        """Wait ``seconds`` for the source, sending what is buffered meanwhile (as ``pump``
        would: full calls at once, others after the linger); returns at once on shutdown.
        Pacing and the yfinance poll interval both wait here, so a ready batch never waits
        for the next record."""
        deadline = self._clock() + seconds
        while not self._stop.is_set():
            self.writer.pump()
            self.progress.update(self.writer.stats, self.writer.pending)
            now = self._clock()
            if now >= deadline:
                return
            wake = self.writer.next_wake()
            self._stop.wait(deadline - now if wake is None else min(deadline, wake) - now)

    def run(self, records: Iterable[Record]) -> RunResult:
        restore = self._install_signals()
        try:
            writer, progress = self.writer, self.progress
            for key, data in records:
                if self._stop.is_set():
                    break
                writer.add(key, data)
                writer.pump()
                progress.update(writer.stats, writer.pending)
            writer.flush()
        finally:
            restore()
        self.progress.finish(self.writer.stats, self.writer.pending)
        return RunResult(self.writer.stats, self.progress.elapsed(), self._stop.is_set())

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signal handlers can only be set from the main thread

        def handle(signum: int, frame: FrameType | None) -> None:
            if self._stop.is_set():  # a second signal: the user does not want to wait
                raise KeyboardInterrupt
            self._stop.set()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
