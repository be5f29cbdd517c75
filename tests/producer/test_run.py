"""The produce loop: a signal stops reading, what is buffered is flushed, nothing is lost."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator

from producer.progress import Progress
from producer.run import Runner
from producer.writer import OrderedBatchWriter
from tests.producer.fakes import MemoryKinesis


def test_sigterm_stops_reading_and_flushes_everything_buffered() -> None:
    memory = MemoryKinesis()
    # A long linger: without the final flush most records would still be buffered.
    writer = OrderedBatchWriter(memory, "s", linger=3600)
    runner = Runner(writer, Progress(io.StringIO(), tty=False))
    produced: list[tuple[str, bytes]] = []

    def source() -> Iterator[tuple[str, bytes]]:
        for i in range(10_000):
            if i == 1_234:
                os.kill(os.getpid(), signal.SIGTERM)
            record = (f"K{i % 7}", str(i).encode())
            produced.append(record)
            yield record

    previous = signal.getsignal(signal.SIGTERM)
    result = runner.run(source())
    assert signal.getsignal(signal.SIGTERM) == previous  # handlers restored
    assert result.interrupted
    sent = sorted((k, d) for k, data in memory.by_key.items() for d in data)
    # Every record read before the stop was noticed is on the stream; reading stopped there.
    assert len(produced) <= 1_236
    assert sent == sorted(produced[: result.stats.sent]) and result.stats.sent >= 1_234
    assert result.stats.lost == 0 and writer.pending == 0


def test_progress_is_a_line_on_a_tty_and_json_otherwise() -> None:
    tty = io.StringIO()
    progress = Progress(tty, tty=True, every=0.0)
    writer = OrderedBatchWriter(MemoryKinesis(), "s")
    writer.add("K", b"x")
    writer.flush()
    progress.update(writer.stats, 0)
    assert tty.getvalue().startswith("\rsent 1 ") and "retries 0" in tty.getvalue()
