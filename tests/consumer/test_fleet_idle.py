"""``consume --until-idle`` with several workers: the fleet is idle only when every open shard
has a live, caught-up processor - whichever worker runs it - and nothing arrived for the idle
time. Statuses are built by hand; the clock is a number."""

from __future__ import annotations

from pathlib import Path

from consumer.daemon import STATUS_STALE_SECONDS, fleet_idle, forget_stale_statuses
from consumer.status import ShardStatus, StatusReporter, read_statuses

NOW = 1_000_000.0
START = NOW - 100
SHARDS = {"shardId-000000000000", "shardId-000000000001", "shardId-000000000002"}


def _status(
    shard: str, *, beat: float = NOW - 1, lag: int | None = 0, last: float | None = None
) -> ShardStatus:
    return ShardStatus(
        shard_id=shard, worker="w", heartbeat_at=beat, millis_behind_latest=lag, last_record_at=last
    )


def _all(**overrides: ShardStatus) -> list[ShardStatus]:
    return [overrides.get(s[-1:], _status(s, last=NOW - 30)) for s in sorted(SHARDS)]


def test_idle_when_every_open_shard_is_live_caught_up_and_quiet() -> None:
    assert fleet_idle(_all(), SHARDS, START, idle=6, now=NOW)
    assert not fleet_idle(_all(), SHARDS, START, idle=31, now=NOW)


def test_a_shard_run_by_a_paused_or_dead_worker_is_not_idle() -> None:
    stale = _status("shardId-000000000001", beat=NOW - STATUS_STALE_SECONDS - 1, last=NOW - 30)
    assert not fleet_idle(_all(**{"1": stale}), SHARDS, START, idle=6, now=NOW)


def test_a_lease_in_hand_over_reports_lag_and_is_not_idle() -> None:
    lagging = _status("shardId-000000000002", lag=1_500, last=NOW - 30)
    assert not fleet_idle(_all(**{"2": lagging}), SHARDS, START, idle=6, now=NOW)


def test_a_new_child_shard_not_started_yet_is_not_idle_and_closed_parents_do_not_count() -> None:
    after_split = {"shardId-000000000001", "shardId-000000000002", "shardId-000000000003"}
    assert not fleet_idle(_all(), after_split, START, idle=6, now=NOW)
    child = _status("shardId-000000000003", last=NOW - 30)
    assert fleet_idle([*_all(), child], after_split, START, idle=6, now=NOW)


def test_nothing_known_about_the_stream_is_never_idle() -> None:
    assert not fleet_idle(_all(), set(), START, idle=6, now=NOW)


def test_stale_files_are_forgotten_at_start_live_ones_kept(tmp_path: Path) -> None:
    live = StatusReporter(tmp_path, "shardId-000000000000", "worker-a")
    live.report(3, 0, 0)
    gone = StatusReporter(tmp_path, "shardId-000000000001", "worker-b")
    gone.report(3, 0, 0)
    forget_stale_statuses(tmp_path, gone.status.heartbeat_at + STATUS_STALE_SECONDS / 2)
    assert len(read_statuses(tmp_path)) == 2
    forget_stale_statuses(tmp_path, gone.status.heartbeat_at + STATUS_STALE_SECONDS + 1)
    assert read_statuses(tmp_path) == []
