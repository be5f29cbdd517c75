"""``stockpipe process``: the consumer's enrichment over a file of ticks, as one shard, no AWS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec

from consumer.pipeline import DEFAULT_MAX_CLOCK_SKEW, Counts, TickPipeline
from core.contracts.dead_letter import DeadLetter
from core.contracts.row import EnrichedRow, row_to_record

FILE_SHARD_ID: Final = "file"
_encoder: Final = msgspec.json.Encoder(decimal_format="number")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its end of line), skipping blank lines."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                yield number, stripped


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def process_file(
    input_path: Path,
    output_path: Path,
    dead_letter_path: Path,
    max_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    clock: Callable[[], datetime] = _wall_clock,
) -> Counts:
    """Every line becomes a row, a dead letter or a dropped duplicate: nothing a line holds
    stops the run. A line is "received" when it is read (``clock``): a tick dated more than
    ``max_skew`` after that is a ``future_timestamp`` dead letter, as on the stream."""
    pipeline = TickPipeline(max_skew=max_skew)
    with output_path.open("wb") as out, dead_letter_path.open("wb") as dead:
        for number, raw in iter_lines(input_path):
            outcome = pipeline.apply(
                raw, FILE_SHARD_ID, str(number), None, line=number, received_at=clock()
            )
            if type(outcome) is EnrichedRow:
                # Cannot fail for a row the pipeline checked (Decimals, strings, bools).
                out.write(_encoder.encode(row_to_record(outcome)) + b"\n")
            elif type(outcome) is DeadLetter:
                dead.write(_encoder.encode(outcome) + b"\n")
    return pipeline.counts()
