"""One raw record in, one outcome out: decode -> accept/reject -> enrich.

Shared by the KCL record processor and ``stockpipe process`` so that a file run and a stream
run apply exactly the same rules. Poison-proof: whatever one record makes raise becomes that
record's dead letter (``processing_error``, with the exception's class), the symbol's window
is left as it was, and the next record is processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from consumer.enrichment import Enricher, Rejection
from core.contracts.dead_letter import DeadLetter, make_dead_letter
from core.contracts.rejects import EngineReason, InvalidTick
from core.contracts.row import EnrichedRow
from core.contracts.schema import check_row_fits
from core.contracts.tick import Tick, decode_tick, format_ts

LATE: Final = EngineReason.LATE.value
DEFAULT_MAX_CLOCK_SKEW: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Counts:
    accepted: int
    duplicates: int
    late: int
    invalid: int
    future: int = 0
    errors: int = 0

    def summary(self) -> str:
        return (
            f"accepted={self.accepted} duplicates={self.duplicates} "
            f"late={self.late} invalid={self.invalid} "
            f"future={self.future} errors={self.errors}"
        )


@dataclass(frozen=True, slots=True)
class ProcessingError:
    """A record whose processing raised: what, for its dead letter."""

    detail: str

    @classmethod
    def of(cls, stage: str, error: Exception) -> ProcessingError:
        return cls(f"{type(error).__name__} while {stage}: {error}")


Parsed = Tick | InvalidTick | ProcessingError


def decode(raw: bytes) -> Parsed:
    """``decode_tick`` that never raises: a rejection or a failure is returned."""
    try:
        return decode_tick(raw)
    except InvalidTick as rejected:
        return rejected
    except MemoryError:
        raise  # the process is in trouble, not the record
    except Exception as error:
        return ProcessingError.of("decoding", error)


class TickPipeline:
    __slots__ = ("enricher", "errors", "future", "invalid", "max_skew")

    def __init__(
        self, enricher: Enricher | None = None, max_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    ) -> None:
        self.enricher = Enricher() if enricher is None else enricher
        self.max_skew = max_skew
        self.invalid = 0
        self.future = 0
        self.errors = 0

    def apply(
        self,
        raw: bytes,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None = None,
        line: int | None = None,
        received_at: datetime | None = None,
    ) -> EnrichedRow | DeadLetter | None:
        """The row, a dead letter, or None for a dropped exact duplicate."""
        return self.apply_parsed(
            raw, decode(raw), shard_id, sequence_number, arrival_ts, line, received_at
        )

    def apply_parsed(
        self,
        raw: bytes,
        parsed: Parsed,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None = None,
        line: int | None = None,
        received_at: datetime | None = None,
    ) -> EnrichedRow | DeadLetter | None:
        """As ``apply``, for a record already decoded by ``decode``. ``received_at`` is when
        the record reached us (default ``arrival_ts``, the stream's arrival time): a tick
        dated more than ``max_skew`` after it is a ``future_timestamp`` dead letter."""
        if type(parsed) is not Tick:
            assert not isinstance(parsed, Tick)  # for mypy: `type() is` does not narrow
            return self._dead_letter(raw, parsed, None, shard_id, sequence_number, arrival_ts, line)
        tick = parsed
        outcome: EnrichedRow | Rejection | EngineReason | ProcessingError | None
        try:
            outcome = self._enrich(tick, shard_id, sequence_number, arrival_ts, received_at)
        except MemoryError:
            raise
        except Exception as error:
            outcome = ProcessingError.of("enriching", error)
        if outcome is None or type(outcome) is EnrichedRow:
            return outcome
        assert not isinstance(outcome, EnrichedRow)
        return self._dead_letter(raw, outcome, tick, shard_id, sequence_number, arrival_ts, line)

    def _enrich(
        self,
        tick: Tick,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None,
        received_at: datetime | None,
    ) -> EnrichedRow | Rejection | EngineReason | None:
        reference = arrival_ts if received_at is None else received_at
        if reference is not None and tick.ts > reference + self.max_skew:
            # Checked before the window is read: a tick from the future must never become
            # the symbol's watermark (every honest tick after it would be late).
            return EngineReason.FUTURE_TIMESTAMP
        outcome = self.enricher.apply(
            tick, shard_id, sequence_number, arrival_ts, check=check_row_fits
        )
        if outcome is Rejection.DUPLICATE:
            return None
        return outcome

    def _dead_letter(
        self,
        raw: bytes,
        outcome: Rejection | EngineReason | InvalidTick | ProcessingError,
        tick: Tick | None,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None,
        line: int | None,
    ) -> DeadLetter:
        if isinstance(outcome, InvalidTick):
            self.invalid += 1
            reason, detail = outcome.reason.value, outcome.detail
        elif isinstance(outcome, ProcessingError):
            self.errors += 1
            reason, detail = EngineReason.PROCESSING_ERROR.value, outcome.detail
        elif outcome is EngineReason.FUTURE_TIMESTAMP:
            assert tick is not None
            self.future += 1
            reason = outcome.value
            detail = (
                f"ts {format_ts(tick.ts)} is more than {self.max_skew.total_seconds():g} s after "
                f"the record was received"
                + ("" if arrival_ts is None else f" ({format_ts(arrival_ts)})")
            )
        else:  # late
            assert tick is not None
            reason = LATE
            window = self.enricher.windows.get(tick.symbol)
            detail = (
                f"ts {format_ts(tick.ts)} is not newer than the last accepted "
                + ("tick" if window is None else f"{format_ts(window.last_ts)}")
                + f" of {tick.symbol}"
            )
        return make_dead_letter(
            raw,
            reason,
            detail,
            shard_id,
            sequence_number,
            symbol=None if tick is None else tick.symbol,
            ts=None if tick is None else format_ts(tick.ts),
            arrival_ts=None if arrival_ts is None else format_ts(arrival_ts),
            line=line,
        )

    def counts(self) -> Counts:
        c = self.enricher.counts
        return Counts(c.accepted, c.duplicates, c.late, self.invalid, self.future, self.errors)
