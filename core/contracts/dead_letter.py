"""Dead letters: a record that was not applied, with its exact bytes and why."""

from __future__ import annotations

import base64

import msgspec


class DeadLetter(msgspec.Struct, frozen=True, omit_defaults=True):
    reason: str  # one of core.contracts.rejects.DEAD_LETTER_REASONS
    detail: str
    raw: str  # the record as text (undecodable bytes replaced), for people
    raw_base64: str  # the exact bytes, so nothing is lost
    shard_id: str
    sequence_number: str
    symbol: str | None = None
    ts: str | None = None
    arrival_ts: str | None = None
    line: int | None = None  # for file runs: the 1-based line number


def make_dead_letter(
    raw: bytes,
    reason: str,
    detail: str,
    shard_id: str,
    sequence_number: str,
    *,
    symbol: str | None = None,
    ts: str | None = None,
    arrival_ts: str | None = None,
    line: int | None = None,
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        detail=detail,
        raw=raw.decode("utf-8", errors="replace"),
        raw_base64=base64.b64encode(raw).decode("ascii"),
        shard_id=shard_id,
        sequence_number=sequence_number,
        symbol=symbol,
        ts=ts,
        arrival_ts=arrival_ts,
        line=line,
    )
