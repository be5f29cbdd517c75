"""A shard processor's progress report: a small JSON file per shard, rewritten atomically
after every ``processRecords``. ``stockpipe consume --until-idle`` and the main job read it;
nothing in the delivery path depends on it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec


class ShardStatus(msgspec.Struct):
    shard_id: str
    worker: str = ""  # the worker whose processor wrote it last (files are per shard)
    records: int = 0  # records received by this process
    heartbeat_at: float = 0.0  # wall clock of the last processRecords, even an empty one
    first_record_at: float | None = None  # wall clock of the first non-empty processRecords
    last_record_at: float | None = None  # wall clock of the last non-empty processRecords
    millis_behind_latest: int | None = None
    committed_records: int = 0  # records made durable and checkpointed
    last_commit_at: float | None = None
    skipped_replays: int = 0


class StatusReporter:
    def __init__(self, directory: Path, shard_id: str, worker: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / f"{shard_id}.json"
        self.status = ShardStatus(shard_id=shard_id, worker=worker)

    def report(
        self,
        records: int,
        millis_behind_latest: int | None,
        skipped: int,
        committed_records: int = 0,
        last_commit_at: float | None = None,
    ) -> None:
        now = time.time()
        status = self.status
        status.heartbeat_at = now
        status.millis_behind_latest = millis_behind_latest
        status.skipped_replays = skipped
        status.committed_records = committed_records
        status.last_commit_at = last_commit_at
        if records:
            status.records += records
            status.last_record_at = now
            if status.first_record_at is None:
                status.first_record_at = now
        # Unique per process: the stale and the new owner of a shard may both write it.
        temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(msgspec.json.encode(status))
        os.replace(temporary, self._path)


def read_statuses(directory: Path) -> list[ShardStatus]:
    statuses = []
    for path in sorted(directory.glob("*.json")):
        try:
            statuses.append(msgspec.json.decode(path.read_bytes(), type=ShardStatus))
        except (OSError, msgspec.DecodeError):
            continue  # being replaced right now: the next poll reads it
    return statuses
