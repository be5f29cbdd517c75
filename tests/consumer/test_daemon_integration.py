"""The consumer under the real Java MultiLangDaemon, against the local stack (moto server +
kinesis-local on 127.0.0.1): real ticks plus bad records go in through `stockpipe produce`,
`stockpipe consume --until-idle` runs the daemon, and the DynamoDB rows, the Parquet rows (all
files read back) and the dead letters must equal what `stockpipe process` makes of the same
file - the oracle is the file pipeline, run without AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.consumer.pipeline_support import (
    assert_equals_file_pipeline,
    cli,
    expected_outputs,
    input_file,
    local_stack,
)

pytestmark = pytest.mark.slow


def test_daemon_run_equals_the_file_pipeline(tmp_path: Path) -> None:
    ticks = input_file(tmp_path / "ticks.jsonl")
    expected, expected_dead = expected_outputs(ticks, tmp_path)
    assert len(expected) == 600 and len(expected_dead) == 4
    with local_stack(
        tmp_path / "local", STOCKPIPE_FLUSH_RECORDS="150", STOCKPIPE_FLUSH_SECONDS="2"
    ) as env:
        cli(["produce", "--source", "file", "--input", str(ticks)], env)
        cli(
            ["consume", "--until-idle", "6", "--workdir", str(tmp_path / "consumer")],
            env,
            timeout=600,
        )

        assert_equals_file_pipeline(env, expected, expected_dead)
