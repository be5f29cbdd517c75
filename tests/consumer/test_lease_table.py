"""consumer/lease_table.py: the KCL lease table made in one CreateTable before the daemon
starts. On in-process moto: made once, left alone when it exists, one winner when workers start
together, a clear error without the right to create it. Under the real MultiLangDaemon
(slow): the table KCL makes for itself, described, equals ours - the oracle for the schema."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from consumer.daemon import daemon_env, java_command, kcl_jars, kcl_properties, write_properties
from consumer.errors import ConsumerError
from consumer.lease_table import LEASE_OWNER_INDEX, ensure_lease_table
from core.settings import Settings
from tests.consumer.pipeline_support import local_stack, session


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def _shape(dynamodb: Any, name: str) -> dict[str, Any]:
    """What KCL relies on in a lease table's description (names, ARNs and counts left out)."""
    table = dynamodb.describe_table(TableName=name)["Table"]
    return {
        "keys": table["KeySchema"],
        "attributes": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "billing": table.get("BillingModeSummary", {}).get("BillingMode"),
        "indexes": sorted(
            (i["IndexName"], tuple(map(str, i["KeySchema"])), i["Projection"]["ProjectionType"])
            for i in table.get("GlobalSecondaryIndexes", [])
        ),
    }


def test_the_table_is_made_once_with_the_owner_index(dynamodb: Any) -> None:
    assert ensure_lease_table(dynamodb, "app") is True
    shape = _shape(dynamodb, "app")
    assert [name for name, _, _ in shape["indexes"]] == [LEASE_OWNER_INDEX]
    dynamodb.put_item(TableName="app", Item={"leaseKey": {"S": "shardId-0"}})
    assert ensure_lease_table(dynamodb, "app") is False
    assert dynamodb.scan(TableName="app")["Count"] == 1  # the existing table kept its items


def test_workers_that_start_together_get_one_table(dynamodb: Any) -> None:
    start = threading.Barrier(4)
    made: list[bool] = []

    def worker() -> None:
        start.wait()
        made.append(ensure_lease_table(dynamodb, "app"))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == [False, False, False, True]
    assert dynamodb.list_tables()["TableNames"] == ["app"]


def test_no_right_to_create_it_is_a_clear_error() -> None:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    with Stubber(client) as stub:
        stub.add_client_error("create_table", "AccessDeniedException", http_status_code=400)
        with pytest.raises(ConsumerError, match=r"'app' \(AccessDeniedException\).*CreateTable"):
            ensure_lease_table(client, "app")


@pytest.mark.slow
def test_the_table_equals_the_one_the_daemon_makes_for_itself(tmp_path: Path) -> None:
    with local_stack(tmp_path / "local", shards=1) as env:
        dynamodb = session(env).client("dynamodb", endpoint_url=env["STOCKPIPE_ENDPOINT_URL"])
        settings = Settings(
            region=env["AWS_REGION"],
            endpoint_url=env["STOCKPIPE_ENDPOINT_URL"],
            kinesis_endpoint_url=env["STOCKPIPE_KINESIS_ENDPOINT_URL"],
            stream_name=env["STOCKPIPE_STREAM_NAME"],
            application_name="made-by-kcl",
        )
        properties = tmp_path / "kcl.properties"
        write_properties(properties, kcl_properties(settings, local=True, worker_id="w1"))
        # The daemon alone, without `stockpipe consume` (which would make the table first).
        daemon = subprocess.Popen(
            java_command(properties, kcl_jars(settings)),
            env=daemon_env(env, tmp_path / "status", "w1"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not _has_index(dynamodb, "made-by-kcl"):
                assert time.monotonic() < deadline, "the daemon made no lease table with index"
                assert daemon.poll() is None, "the daemon exited"
                time.sleep(0.5)
        finally:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        assert ensure_lease_table(dynamodb, "made-by-us") is True
        assert _shape(dynamodb, "made-by-us") == _shape(dynamodb, "made-by-kcl")


def _has_index(dynamodb: Any, name: str) -> bool:
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return False
    return any(i["IndexName"] == LEASE_OWNER_INDEX for i in table.get("GlobalSecondaryIndexes", []))
