"""kill -9 of the daemon and all its children at exact points of the commit sequence (mid rows
write, after the Parquet write but before the state, after the state but before the
checkpoint), then a restart, again and again, then a clean run to the end: DynamoDB, every
Parquet row and the dead letters equal an uninterrupted run (``stockpipe process`` on the same
file) - nothing lost, nothing doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stockpipe.local import kcl_tables
from tests.consumer.pipeline_support import (
    ROOT,
    STOCKPIPE,
    assert_equals_file_pipeline,
    cli,
    dynamodb_rows,
    expected_outputs,
    input_file,
    local_stack,
    session,
)

pytestmark = pytest.mark.slow
FAULTS = ("mid_rows@2", "after_lake@2", "after_state@2")


def _consume_until_killed(env: dict[str, str], fault: str, workdir: Path) -> None:
    started = time.monotonic()
    consumer = subprocess.Popen(
        [*STOCKPIPE, "consume", "--workdir", str(workdir)],
        env={
            **env,
            "STOCKPIPE_FAULT_INJECTION": fault,
            "STOCKPIPE_PROCESSOR_MODULE": "tests.consumer.faulty_kcl_app",
        },
        cwd=ROOT,
        start_new_session=True,  # its own process group: the fault kills all of it
    )
    try:
        code = consumer.wait(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(consumer.pid, signal.SIGKILL)
        raise
    assert code == -signal.SIGKILL, f"{fault}: the consumer was not killed (exit {code})"
    print(f"{fault}: killed after {time.monotonic() - started:.0f} s")


def _forget_dead_workers(env: dict[str, str]) -> None:
    """No worker is alive here: forget them all, as their expiry would (the leader lock for
    about two minutes, the metrics rows until stale). Leader election is KCL's business, not
    this test's."""
    dynamodb = session(env).client("dynamodb", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])
    kcl_tables.forget_workers(dynamodb, env["STOCKPIPE_APPLICATION_NAME"])


def test_killed_at_every_commit_step_then_finished_equals_uninterrupted(tmp_path: Path) -> None:
    ticks = input_file(tmp_path / "ticks.jsonl")
    expected, expected_dead = expected_outputs(ticks, tmp_path)
    with local_stack(
        tmp_path / "local",
        STOCKPIPE_FLUSH_RECORDS="30",
        STOCKPIPE_FLUSH_SECONDS="1",
        STOCKPIPE_KCL_MAX_RECORDS="20",
    ) as env:
        cli(["produce", "--source", "file", "--input", str(ticks)], env)
        rows_seen = []
        for fault in FAULTS:
            _consume_until_killed(env, fault, tmp_path / "consumer")
            rows_seen.append(len(dynamodb_rows(env)))
            _forget_dead_workers(env)
        assert 0 < rows_seen[0] < len(expected), "the first kill came mid-stream"
        cli(
            ["consume", "--until-idle", "6", "--workdir", str(tmp_path / "consumer")],
            env,
            timeout=600,
        )

        assert_equals_file_pipeline(env, expected, expected_dead)
