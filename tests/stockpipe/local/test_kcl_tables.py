"""stockpipe/local/kcl_tables.py over tables shaped as KCL 3 makes them (in-process moto):
lease owners without finished shards, the leader, and forgetting killed workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stockpipe.local import kcl_tables

APP = "stockpipe-test"


def _table(dynamodb: Any, name: str, key: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _table(client, APP, "leaseKey")
        _table(client, f"{APP}-CoordinatorState", "key")
        _table(client, f"{APP}-WorkerMetricStats", "wid")
        leases = [
            ("shardId-0", "w1", "49"),
            ("shardId-1", "w2", "SHARD_END"),
            ("shardId-2", "", ""),
        ]
        for shard, owner, checkpoint in leases:
            item = {"leaseKey": {"S": shard}, "checkpoint": {"S": checkpoint}}
            if owner:
                item["leaseOwner"] = {"S": owner}
            client.put_item(TableName=APP, Item=item)
        client.put_item(
            TableName=f"{APP}-CoordinatorState",
            Item={"key": {"S": "Leader"}, "leaseOwner": {"S": "w1"}},
        )
        client.put_item(TableName=f"{APP}-CoordinatorState", Item={"key": {"S": "DdbLockState"}})
        for worker in ("w1", "w2", "w3"):
            client.put_item(TableName=f"{APP}-WorkerMetricStats", Item={"wid": {"S": worker}})
        yield client


def _workers(dynamodb: Any) -> set[str]:
    return {i["wid"]["S"] for i in kcl_tables.scan(dynamodb, f"{APP}-WorkerMetricStats")}


def test_owners_leave_out_finished_shards_and_show_unowned_ones(dynamodb: Any) -> None:
    assert kcl_tables.lease_owners(dynamodb, APP) == {"shardId-0": "w1", "shardId-2": ""}
    assert "w1" in kcl_tables.leader(dynamodb, APP)


def test_forgetting_one_worker_deletes_only_its_metrics(dynamodb: Any) -> None:
    kcl_tables.forget_workers(dynamodb, APP, {"w2"})
    assert _workers(dynamodb) == {"w1", "w3"}
    assert "w1" in kcl_tables.leader(dynamodb, APP)


def test_forgetting_everyone_also_frees_the_leader_lock(dynamodb: Any) -> None:
    kcl_tables.forget_workers(dynamodb, APP)
    assert _workers(dynamodb) == set()
    assert kcl_tables.leader(dynamodb, APP) == set()
    keys = {i["key"]["S"] for i in kcl_tables.scan(dynamodb, f"{APP}-CoordinatorState")}
    assert keys == {"DdbLockState"}


def test_tables_kcl_has_not_made_yet_read_as_empty(dynamodb: Any) -> None:
    assert kcl_tables.lease_owners(dynamodb, "no-such-app") == {}
    kcl_tables.forget_workers(dynamodb, "no-such-app")  # nothing to do, no error
