"""The commit step's retry against botocore's real retry quota: a processor whose lake writes
through the local fault proxy (tests/local_servers.py) to moto in server mode, with the
project's client configuration (core/aws.py), meets a long run of S3 500s on PutObject. The
client's quota runs dry, so botocore stops retrying; the step retry carries the commit
through, and the objects read back from S3 hold exactly the rows of a run without faults."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from consumer.processor import FlushPolicy, ShardProcessor
from consumer.retry import RetryPolicy
from consumer.sinks.lake import S3Lake
from core.aws import MAX_ATTEMPTS, RETRY_CONFIG
from core.contracts.tick import Tick
from tests.consumer.fakes import MemoryCheckpointer, MemoryRows, MemoryS3, MemoryState
from tests.consumer.test_sink_retry import SHARD, records
from tests.local_servers import REGION, RunningProxy, start_proxy, stop_proxy

pytestmark = pytest.mark.slow

BUCKET = "lake"
FAULTS = 45  # S3 500s in a row: more than botocore's quota lets it retry (500 / 14 ~ 35)
# Short waits so the test is quick; the production policy is SINK_RETRY (two minutes).
QUICK = RetryPolicy(base_s=0.05, cap_s=0.4, budget_s=60.0)


@pytest.fixture(scope="module")
def proxy(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    running = start_proxy(moto_endpoint, tmp_path_factory.mktemp("proxy") / "proxy.log")
    try:
        yield running
    finally:
        stop_proxy(running)


class PutAttempts:
    """Counts PutObject requests and, from botocore's ``amz-sdk-request: attempt=N`` header,
    how many of them were first attempts, i.e. calls."""

    def __init__(self) -> None:
        self.requests = 0
        self.calls = 0

    def __call__(self, request: Any, **_: Any) -> None:
        self.requests += 1
        header = request.headers.get("amz-sdk-request", b"")
        header = header.decode() if isinstance(header, bytes) else header
        if header.startswith("attempt=1;"):
            self.calls += 1


def s3_through(proxy: RunningProxy, attempts: PutAttempts | None = None) -> Any:
    s3 = boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("s3", endpoint_url=proxy.url, config=RETRY_CONFIG)
    if attempts is not None:
        s3.meta.events.register("before-send.s3.PutObject", attempts)
    return s3


def run(lake: S3Lake, real_ticks: list[Tick], policy: RetryPolicy) -> MemoryCheckpointer:
    processor = ShardProcessor(
        rows=MemoryRows(),
        lake=lake,
        state=MemoryState(),
        policy=FlushPolicy(records=6, seconds=3600),
        sink_retry=policy,
    )
    processor.initialize(SHARD)
    checkpointer = MemoryCheckpointer()
    stream = records(real_ticks)
    for start in range(0, len(stream), 6):
        processor.process_records(stream[start : start + 6], checkpointer)
    return checkpointer


def objects(s3: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        found[item["Key"]] = pq.read_table(io.BytesIO(body)).to_pylist()
    return found


def test_the_step_retry_outlasts_botocores_retry_quota(
    proxy: RunningProxy, real_ticks: list[Tick], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    oracle_s3 = MemoryS3()
    run(S3Lake(oracle_s3, BUCKET, "ticks", "dead-letter"), real_ticks, QUICK)  # type: ignore[arg-type]
    expected = {k: pq.read_table(io.BytesIO(b)).to_pylist() for k, b in oracle_s3.objects.items()}

    attempts = PutAttempts()
    s3 = s3_through(proxy, attempts)
    s3.create_bucket(Bucket=BUCKET)
    proxy.set_faults(
        [{"name": "storm", "fault": "500", "service": "s3", "operation": "PutObject",
          "limit": FAULTS}]
    )  # fmt: skip
    caplog.set_level(logging.WARNING, logger="consumer.processor")
    checkpointer = run(S3Lake(s3, BUCKET, "ticks", "dead-letter"), real_ticks, QUICK)

    assert proxy.stats()["faults_by_rule"] == {"storm": FAULTS}
    assert checkpointer.checkpoint_at is not None
    proxy.set_faults([])
    assert objects(s3) == expected
    # Every failed attempt was one of the FAULTS, every other one succeeded and ended its
    # call. Had botocore made all MAX_ATTEMPTS attempts of each call that failed, at most
    # FAULTS / MAX_ATTEMPTS calls could have failed; more means botocore gave up sooner: its
    # quota ran dry (the case the step retry exists for) - and the step retry carried on.
    failed_calls = attempts.calls - (attempts.requests - FAULTS)
    step_retries = sum("retrying the step" in r.getMessage() for r in caplog.records)
    print(f"PutObject calls {attempts.calls}, requests {attempts.requests}, failed calls "
          f"{failed_calls}, step retries {step_retries}")  # fmt: skip
    assert failed_calls > FAULTS / MAX_ATTEMPTS + 1, failed_calls
    assert step_retries >= 1


def test_without_the_step_retry_the_same_storm_ends_the_commit(
    proxy: RunningProxy, real_ticks: list[Tick]
) -> None:
    """The control: the storm really is more than botocore rides out on its own."""
    s3 = s3_through(proxy)
    s3.create_bucket(Bucket=f"{BUCKET}-control")
    proxy.set_faults(
        [{"name": "storm", "fault": "500", "service": "s3", "operation": "PutObject",
          "limit": FAULTS}]
    )  # fmt: skip
    no_retry = RetryPolicy(base_s=0.05, cap_s=0.4, budget_s=0.0)
    with pytest.raises(Exception, match=r"InternalError|500"):
        run(S3Lake(s3, f"{BUCKET}-control", "ticks", "dead-letter"), real_ticks, no_retry)
    proxy.set_faults([])
