"""One raw record in, one outcome out: decode -> accept/reject -> enrich.

Shared by the KCL record processor and ``stockpipe process`` so that a file run and a stream
run apply exactly the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from consumer.enrichment import Enricher, Rejection
from core.contracts.dead_letter import DeadLetter, make_dead_letter
from core.contracts.rejects import InvalidTick
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick, decode_tick, format_ts

LATE: Final = "late"


@dataclass(frozen=True, slots=True)
class Counts:
    accepted: int
    duplicates: int
    late: int
    invalid: int

    def summary(self) -> str:
        return (
            f"accepted={self.accepted} duplicates={self.duplicates} "
            f"late={self.late} invalid={self.invalid}"
        )


class TickPipeline:
    __slots__ = ("enricher", "invalid")

    def __init__(self, enricher: Enricher | None = None) -> None:
        self.enricher = Enricher() if enricher is None else enricher
        self.invalid = 0

    def apply(
        self,
        raw: bytes,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None = None,
        line: int | None = None,
    ) -> EnrichedRow | DeadLetter | None:
        """The row, a dead letter, or None for a dropped exact duplicate."""
        try:
            parsed: Tick | InvalidTick = decode_tick(raw)
        except InvalidTick as rejected:
            parsed = rejected
        return self.apply_parsed(raw, parsed, shard_id, sequence_number, arrival_ts, line)

    def apply_parsed(
        self,
        raw: bytes,
        parsed: Tick | InvalidTick,
        shard_id: str,
        sequence_number: str,
        arrival_ts: datetime | None = None,
        line: int | None = None,
    ) -> EnrichedRow | DeadLetter | None:
        """As ``apply``, for a record already decoded (or rejected) by ``decode_tick``."""
        if isinstance(parsed, InvalidTick):
            rejected = parsed
            self.invalid += 1
            return make_dead_letter(
                raw,
                rejected.reason.value,
                rejected.detail,
                shard_id,
                sequence_number,
                arrival_ts=None if arrival_ts is None else format_ts(arrival_ts),
                line=line,
            )
        tick = parsed
        outcome = self.enricher.apply(tick, shard_id, sequence_number, arrival_ts)
        if type(outcome) is EnrichedRow:
            return outcome
        if outcome is Rejection.DUPLICATE:
            return None
        last_ts = self.enricher.windows[tick.symbol].last_ts
        return make_dead_letter(
            raw,
            LATE,
            f"ts {format_ts(tick.ts)} is not newer than the last accepted "
            f"{format_ts(last_ts)} of {tick.symbol}",
            shard_id,
            sequence_number,
            symbol=tick.symbol,
            ts=format_ts(tick.ts),
            arrival_ts=None if arrival_ts is None else format_ts(arrival_ts),
            line=line,
        )

    def counts(self) -> Counts:
        c = self.enricher.counts
        return Counts(c.accepted, c.duplicates, c.late, self.invalid)
