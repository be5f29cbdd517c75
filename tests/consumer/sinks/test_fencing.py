"""A worker that lost a shard's lease resumes in the middle of its commit after the new owner
has written (the SIGSTOP case of issue 12), at every step of the commit, for every sink: the
lake, the rows table and the dead letters end exactly as ``stockpipe process`` makes them over
the same records, the stale owner stops, and the new owner never does. Then reshards: a
symbol's window continues from the parent into a child and from both parents into a merged
child, and a parent's stale owner cannot overwrite what a child saved.

moto in-process; the interleavings are forced by pausing the stale owner's sink clients
(tests/consumer/sinks/fleet_support.py). moto honours the S3 conditions the lake relies on
(If-None-Match, If-Match on PUT and DELETE) and DynamoDB transactions with a ConditionCheck,
but checks an S3 condition and stores the object in two steps, where S3 does both at once:
the harness's AtomicConditionalS3 makes them one, else two owners writing side by side (one
owner's lake thread runs on while the other writes) could both win ``If-None-Match: *``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consumer.errors import LeaseGone
from core.settings import Settings
from tests.consumer.sinks.fleet_support import (
    STEPS,
    Expected,
    Pause,
    Stack,
    as_records,
    day_of_ticks,
    oracle,
    with_bad_records,
)

SHARD = "shardId-000000000000"
SYMBOLS = [f"S{n:02d}" for n in range(20)]
LINES = with_bad_records(day_of_ticks(SYMBOLS, 100, seed=12))  # 2,000 ticks, one day
RECORDS = as_records(LINES)
BATCHES = [(500, 1_500), (1_500, 500)]  # (stale owner's batch, new owner's batch)


@pytest.fixture
def stack(dynamodb: Any, s3: Any, settings: Settings) -> Stack:
    return Stack(dynamodb, s3, settings)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Expected:
    return oracle(LINES, tmp_path_factory.mktemp("oracle"))


def _assert_exact(stack: Stack, expected: Expected) -> None:
    lake = stack.lake_rows()
    assert sum(lake.values()) == sum(expected.rows.values())
    assert lake - expected.rows == {}, "rows doubled or invented in the lake"
    assert expected.rows - lake == {}, "rows lost from the lake"
    assert stack.lake_letters() == expected.letters
    assert stack.table_rows() == expected.rows
    # The state each symbol ends with is its latest row's: no stale save landed after it.
    last = expected.last_prices()
    assert stack.last_prices(last) == last


def test_the_day_has_2000_ticks_and_every_kind_of_bad_record(expected: Expected) -> None:
    assert sum(expected.rows.values()) == 2_000
    assert sorted(reason for reason, _ in expected.letters) == [
        "late",
        "naive_timestamp",
        "not_json",
    ]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize(("old_batch", "new_batch"), BATCHES)
def test_a_stale_owner_resuming_after_the_new_owner_has_written_changes_nothing(
    stack: Stack, expected: Expected, step: str, old_batch: int, new_batch: int
) -> None:
    new = stack.processor(new_batch, worker="B")

    def lease_moves_and_the_new_owner_runs_to_the_end() -> None:
        start = stack.leases.take(SHARD, "B", RECORDS)
        stack.run(new, SHARD, "B", RECORDS, new_batch, start=start)

    pause = Pause(step, lease_moves_and_the_new_owner_runs_to_the_end)
    old = stack.processor(old_batch, pause, worker="A")
    stack.leases.take(SHARD, "A", RECORDS)
    with pytest.raises(LeaseGone):
        stack.run(old, SHARD, "A", RECORDS, old_batch, before_checkpoint=lambda: pause.at(step))
    assert pause.fired
    _assert_exact(stack, expected)
    assert stack.leases.checkpoint[SHARD] == RECORDS[-1].sequence_number


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize(("old_batch", "new_batch"), BATCHES)
def test_a_stale_owner_writing_before_the_new_owner_neither_stops_nor_corrupts_it(
    stack: Stack, expected: Expected, step: str, old_batch: int, new_batch: int
) -> None:
    """The new owner has claimed the shard but not written yet when the stale one resumes
    and writes what it still can (rows, the first lake objects): the new owner reads those
    objects like a crashed attempt's and carries on."""
    new = stack.processor(new_batch, worker="B")
    start: list[int] = []

    def lease_moves_and_the_new_owner_claims() -> None:
        start.append(stack.leases.take(SHARD, "B", RECORDS))
        new.initialize(SHARD)

    pause = Pause(step, lease_moves_and_the_new_owner_claims)
    old = stack.processor(old_batch, pause, worker="A")
    stack.leases.take(SHARD, "A", RECORDS)
    with pytest.raises(LeaseGone):
        stack.run(old, SHARD, "A", RECORDS, old_batch, before_checkpoint=lambda: pause.at(step))
    stack.run(new, SHARD, "B", RECORDS, new_batch, start=start[0], initialize=False)
    _assert_exact(stack, expected)


# -- reshards ------------------------------------------------------------------------------

PARENT, LEFT, RIGHT = "shardId-000000000000", "shardId-000000000001", "shardId-000000000002"
MERGED = "shardId-000000000003"


def _halves(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    half = len(lines) // 2
    return lines[:half], lines[half:]


def _of(lines: list[bytes], symbols: list[str]) -> list[bytes]:
    return [x for x in lines if any(f'"symbol":"{s}"'.encode() in x for s in symbols)]


def test_split_children_continue_the_parents_windows_a_stale_parent_owner_cannot_overwrite(
    stack: Stack, tmp_path: Path
) -> None:
    """The parent's first owner is paused before its first state save; the lease moves,
    the new owner ends the parent (SHARD_END), both children run; then the stale parent
    owner resumes. Without the fence it overwrote the children's state and the children's
    next rows had the parent's old prev_price (a false anomaly)."""
    day = day_of_ticks(SYMBOLS, 60, seed=3)
    before, after = _halves(day)
    left_lines, right_lines = _of(after, SYMBOLS[:10]), _of(after, SYMBOLS[10:])
    parent = as_records(before, 10**20)
    left, right = as_records(left_lines, 2 * 10**20), as_records(right_lines, 3 * 10**20)
    expected = oracle(before + left_lines + right_lines, tmp_path)

    def lease_moves_parent_ends_children_run() -> None:
        start = stack.leases.take(PARENT, "B", parent)
        stack.run(
            stack.processor(80, worker="B"), PARENT, "B", parent, 80, start=start, end_shard=True
        )
        assert stack.leases.checkpoint[PARENT] == "SHARD_END"  # now KCL starts the children
        for shard, records in ((LEFT, left), (RIGHT, right)):
            stack.leases.take(shard, "B", records)
            stack.run(stack.processor(70, worker="B"), shard, "B", records, 70, end_shard=False)

    pause = Pause("state", lease_moves_parent_ends_children_run)
    stale = stack.processor(250, pause, worker="A")
    stack.leases.take(PARENT, "A", parent)
    with pytest.raises(LeaseGone):
        stack.run(stale, PARENT, "A", parent, 250)
    assert pause.fired
    _assert_exact(stack, expected)
    state = stack.dynamodb.Table(stack.settings.state_table)
    owners = {s: state.get_item(Key={"symbol": s})["Item"]["shard_id"] for s in SYMBOLS}
    assert owners == {s: LEFT if s in SYMBOLS[:10] else RIGHT for s in SYMBOLS}


def test_after_a_merge_the_child_continues_the_windows_of_both_parents(
    stack: Stack, tmp_path: Path
) -> None:
    day = day_of_ticks(SYMBOLS, 60, seed=4)
    before, after = _halves(day)
    first, second = _of(before, SYMBOLS[:10]), _of(before, SYMBOLS[10:])
    expected = oracle(first + second + after, tmp_path)
    for shard, lines, base in ((LEFT, first, 2), (RIGHT, second, 3), (MERGED, after, 4)):
        records = as_records(lines, base * 10**20)
        stack.leases.take(shard, "A", records)
        stack.run(
            stack.processor(90, worker="A"), shard, "A", records, 90, end_shard=shard != MERGED
        )
    _assert_exact(stack, expected)
