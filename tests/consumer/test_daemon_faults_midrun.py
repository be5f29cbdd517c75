"""Fault injection under the real MultiLangDaemon, starting mid-run: the local proxy
(stockpipe/local/proxy.py), which the daemon's children and the daemon's own lease-table calls
go through, throttles, answers 500 and 503, S3 SlowDown, holds requests past the read timeout
and resets connections for a while, in the middle of a run. Afterwards: no row, object or dead
letter lost or doubled (the oracle is ``stockpipe process`` over the same file), so nothing was
checkpointed past unwritten data; the worker never stopped (the storm is shorter than the
commit steps' retry budget); and ``consume --until-idle`` ends with exit 0, which it only does
once every shard is caught up with its tip (lag back to zero)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.consumer.pipeline_support import (
    ROOT,
    STOCKPIPE,
    assert_equals_file_pipeline,
    cli,
    dynamodb_rows,
    expected_outputs,
    input_file,
    local_stack,
)

pytestmark = pytest.mark.slow

FAULT_SECONDS = 40
# Sure faults: the first calls of each kind after the schedule is loaded fail, whenever they
# come (no time window), so every kind is injected on every run, however the commits fall in
# time. Rules are tried in order, so these come first. (State loads, BatchGetItem, are met only
# by the storm: the second half of the file may bring no symbol that is not resident yet.)
SURE_FAULTS: dict[str, int] = {
    "timeouts": 1,  # each one costs a read timeout (hold_seconds)
    "rows-throttle": 1,
    "state-500": 1,
    "lake-slowdown": 1,
    "resets": 1,
}
# Then a storm over FAULT_SECONDS: every kind of fault, on every call the children make (rows:
# BatchWriteItem; state: BatchGetItem and TransactWriteItems; lake: GetObject and PutObject;
# the daemon's own checkpoints and lease renewals: UpdateItem), drawn at random. botocore
# retries each call up to 8 times while its retry quota lasts, and the processor retries a
# failed commit step for up to 120 s (consumer/retry.py), longer than the storm.
STORM: list[dict[str, Any]] = [
    {"fault": "throttle", "service": "dynamodb", "operation": "BatchWriteItem", "probability": 0.3},
    {"fault": "500", "service": "dynamodb", "operation": "TransactWriteItems", "probability": 0.35},
    {"fault": "503", "service": "dynamodb", "operation": "BatchGetItem", "probability": 0.2},
    {"fault": "throttle", "service": "s3", "operation": "PutObject", "probability": 0.3},
    {"fault": "503", "service": "s3", "operation": "GetObject", "probability": 0.2},
    {"fault": "throttle", "service": "dynamodb", "operation": "UpdateItem", "probability": 0.1},
    {"fault": "reset", "service": "s3", "probability": 0.1, "limit": 8},
]
SCHEDULE: dict[str, Any] = {
    "seed": 13,
    "rules": [
        {"name": "timeouts", "fault": "timeout", "service": "dynamodb",
         "operation": "BatchWriteItem", "hold_seconds": 12},
        {"name": "rows-throttle", "fault": "throttle", "service": "dynamodb",
         "operation": "BatchWriteItem"},
        {"name": "state-500", "fault": "500", "service": "dynamodb",
         "operation": "TransactWriteItems"},
        {"name": "lake-slowdown", "fault": "throttle", "service": "s3", "operation": "PutObject"},
        {"name": "resets", "fault": "reset", "service": "s3"},
    ],
}  # fmt: skip
for _rule in SCHEDULE["rules"]:
    _rule.update(probability=1, limit=SURE_FAULTS[_rule["name"]], start=0, stop=None)
for _number, _rule in enumerate(STORM):
    _rule.update(name=f"storm-{_number}", start=0, stop=FAULT_SECONDS)
    SCHEDULE["rules"].append(_rule)


def proxy_stats(env: dict[str, str]) -> dict[str, Any]:
    with urllib.request.urlopen(f"{env['STOCKPIPE_LOCAL_PROXY_URL']}/__proxy__/stats") as reply:
        stats: dict[str, Any] = json.loads(reply.read())
    return stats


def wait_for_rows(env: dict[str, str], at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(dynamodb_rows(env)) >= at_least:
            return
        time.sleep(1)
    raise AssertionError(f"fewer than {at_least} rows after {timeout} s")


def test_faults_starting_mid_run_lose_and_double_nothing(tmp_path: Path) -> None:
    ticks = input_file(tmp_path / "ticks.jsonl")
    expected, expected_dead = expected_outputs(ticks, tmp_path)
    lines = ticks.read_text().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[:200]))
    second.write_text("".join(lines[200:]))
    idle = tmp_path / "no-faults.json"
    idle.write_text(json.dumps({"rules": [{"name": "off", "fault": "500", "enabled": False}]}))
    schedule = tmp_path / "faults.json"
    schedule.write_text(json.dumps(SCHEDULE))

    with local_stack(
        tmp_path / "local",
        STOCKPIPE_FLUSH_RECORDS="50",
        STOCKPIPE_FLUSH_SECONDS="2",
        STOCKPIPE_LOCAL_FAULTS=str(idle),  # the proxy runs, injecting nothing yet
    ) as env:
        cli(["produce", "--source", "file", "--input", str(first)], env)
        consume = [
            *STOCKPIPE,
            *("consume", "--until-idle", "45", "--workdir", str(tmp_path / "consumer")),
        ]
        consumer = subprocess.Popen(consume, env=env, cwd=ROOT)
        wait_for_rows(env, 20, timeout=180)  # the daemon is up and committing
        # Faults on, then the rest of the file arrives while they last.
        cli(["local", "proxy", "faults", "--load", str(schedule)], env, capture_output=True)
        cli(["produce", "--source", "file", "--input", str(second)], env)
        # The storm is shorter than the commit steps' own retry budget (consumer/retry.py,
        # SINK_RETRY), so the worker rides it out: no child exits, so the daemon never
        # calls System.exit, and the one consumer ends by itself once caught up.
        assert consumer.wait(timeout=900) == 0, "the fault storm ended the consumer"

        stats = proxy_stats(env)
        injected = stats["faults_by_rule"]
        print(f"faults injected by rule: {injected}")
        # Every sure fault was injected, as often as its limit says: each kind was met.
        assert {name: injected.get(name, 0) for name in SURE_FAULTS} == SURE_FAULTS, injected

        assert_equals_file_pipeline(env, expected, expected_dead)
