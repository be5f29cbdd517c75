"""consumer/lease_table.py: the KCL lease table made in one CreateTable, and KCL's migration
state written, before the daemon starts. On in-process moto: made once, left alone when it
exists, one winner when workers start together, a clear error without the right to create it;
the migration state written once and left alone, shaped as the item a local KCL 3.5 daemon
wrote (tests/stockpipe/local/kcl_lease_table.json). Under the real MultiLangDaemon (slow):
the table and the migration item KCL makes for itself equal ours - the oracle for both."""

from __future__ import annotations

import json
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
from consumer.lease_table import (
    LEASE_OWNER_INDEX,
    MIGRATION_STATE_KEY,
    ensure_lease_table,
    ensure_migration_state,
)
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


# -- KCL's migration state -----------------------------------------------------------------

RECORDED = Path(__file__).parents[1] / "stockpipe" / "local" / "kcl_lease_table.json"
# Values every KCL 3 worker of a new application writes; the rest (who, when) vary.
FIXED = ("leaseKey", "entityType", "cv")


def _item_shape(value: dict[str, Any]) -> Any:
    """A DynamoDB value's type structure: "S", "N", a list of shapes or a dict of them."""
    ((kind, inner),) = value.items()
    if kind == "M":
        return {name: _item_shape(v) for name, v in inner.items()}
    if kind == "L":
        return [_item_shape(v) for v in inner]
    return kind


def _migration_item(dynamodb: Any, table: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.get_item(
        TableName=table, Key={"leaseKey": {"S": MIGRATION_STATE_KEY}}, ConsistentRead=True
    ).get("Item", {})
    return item


def _assert_as_kcl_writes(ours: dict[str, Any], kcls: dict[str, Any]) -> None:
    assert {k: _item_shape(v) for k, v in ours.items()} == {
        k: _item_shape(v) for k, v in kcls.items()
    }
    assert [ours[k] for k in FIXED] == [kcls[k] for k in FIXED]
    assert ours["h"]["L"][0]["M"]["cv"] == kcls["h"]["L"][0]["M"]["cv"]  # from INIT


def test_the_migration_state_is_written_once(dynamodb: Any) -> None:
    ensure_lease_table(dynamodb, "app")
    assert ensure_migration_state(dynamodb, "app", "w1") is True
    assert ensure_migration_state(dynamodb, "app", "w2") is False
    item = _migration_item(dynamodb, "app")
    assert item["mb"] == {"S": "w1"}  # the first writer's, untouched by the second
    assert item["h"]["L"][0]["M"]["mb"] == {"S": "w1"}


def test_the_migration_state_is_the_item_a_kcl_daemon_wrote(dynamodb: Any) -> None:
    recorded = json.loads(RECORDED.read_text())
    (kcls,) = [i for i in recorded if i["leaseKey"]["S"] == MIGRATION_STATE_KEY]
    ensure_lease_table(dynamodb, "app")
    ensure_migration_state(dynamodb, "app", "w9")
    _assert_as_kcl_writes(_migration_item(dynamodb, "app"), kcls)


def test_an_existing_migration_state_of_another_version_is_left_alone(dynamodb: Any) -> None:
    ensure_lease_table(dynamodb, "app")
    rollback = {
        "leaseKey": {"S": MIGRATION_STATE_KEY},
        "entityType": {"S": "CLIENT_VERSION_MIGRATION"},
        "cv": {"S": "CLIENT_VERSION_3X_WITH_ROLLBACK"},  # an application upgrading from KCL 2
        "mb": {"S": "old"},
        "mts": {"N": "1"},
    }
    dynamodb.put_item(TableName="app", Item=rollback)
    assert ensure_migration_state(dynamodb, "app", "w1") is False
    assert _migration_item(dynamodb, "app") == rollback


def test_an_application_with_kcl_3_0_coordinator_table_is_left_to_kcl(dynamodb: Any) -> None:
    ensure_lease_table(dynamodb, "app")
    dynamodb.create_table(
        TableName="app-CoordinatorState",
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert ensure_migration_state(dynamodb, "app", "w1") is False
    assert _migration_item(dynamodb, "app") == {}


def test_no_right_to_write_the_migration_state_is_a_clear_error() -> None:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_client_error("describe_table", "ResourceNotFoundException", http_status_code=400)
        stub.add_client_error("put_item", "AccessDeniedException", http_status_code=400)
        with pytest.raises(ConsumerError, match=r"'app' \(AccessDeniedException\).*PutItem"):
            ensure_migration_state(client, "app", "w1")


@pytest.mark.slow
def test_the_table_and_migration_state_equal_what_the_daemon_makes_for_itself(
    tmp_path: Path,
) -> None:
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
            while not (
                _has_index(dynamodb, "made-by-kcl") and _migration_item(dynamodb, "made-by-kcl")
            ):
                assert time.monotonic() < deadline, "no lease table with index and migration state"
                assert daemon.poll() is None, "the daemon exited"
                time.sleep(0.5)
        finally:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        assert ensure_lease_table(dynamodb, "made-by-us") is True
        assert _shape(dynamodb, "made-by-us") == _shape(dynamodb, "made-by-kcl")
        assert ensure_migration_state(dynamodb, "made-by-us", "w1") is True
        _assert_as_kcl_writes(
            _migration_item(dynamodb, "made-by-us"), _migration_item(dynamodb, "made-by-kcl")
        )


def _has_index(dynamodb: Any, name: str) -> bool:
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return False
    return any(i["IndexName"] == LEASE_OWNER_INDEX for i in table.get("GlobalSecondaryIndexes", []))
