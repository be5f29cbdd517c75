"""stockpipe/local/kcl_tables.py over a lease table shaped as KCL 3.5 makes it (in-process
moto; items as a local KCL 3.5 daemon wrote them, with lease states varied, in
tests/stockpipe/local/kcl_lease_table.json):
lease owners without finished shards, the leader, and forgetting killed workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stockpipe.local import kcl_tables

APP = "stockpipe-test"
ITEMS = Path(__file__).with_name("kcl_lease_table.json")


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=APP,
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for item in json.loads(ITEMS.read_text()):
            client.put_item(TableName=APP, Item=item)
        yield client


def _keys(dynamodb: Any, entity: str) -> set[str]:
    items = kcl_tables.scan(dynamodb, APP)
    return {i["leaseKey"]["S"] for i in items if i["entityType"]["S"] == entity}


def test_owners_leave_out_finished_shards_and_show_unowned_ones(dynamodb: Any) -> None:
    assert kcl_tables.lease_owners(dynamodb, APP) == {
        "shardId-000000000002": "w1",
        "shardId-000000000003": "w2",
        "shardId-000000000004": "",
    }
    assert kcl_tables.leader(dynamodb, APP) == {"w2"}


def test_forgetting_one_worker_deletes_only_its_metrics(dynamodb: Any) -> None:
    kcl_tables.forget_workers(dynamodb, APP, {"w2"})
    assert _keys(dynamodb, "WORKER_METRIC_STATS") == {"w1", "w3"}
    assert kcl_tables.leader(dynamodb, APP) == {"w2"}
    assert len(_keys(dynamodb, "LEASE")) == 4  # leases are not touched


def test_forgetting_everyone_also_frees_the_leader_lock(dynamodb: Any) -> None:
    kcl_tables.forget_workers(dynamodb, APP)
    assert _keys(dynamodb, "WORKER_METRIC_STATS") == set()
    assert kcl_tables.leader(dynamodb, APP) == set()
    assert _keys(dynamodb, "CLIENT_VERSION_MIGRATION") == {"Migration3.0"}
    assert len(_keys(dynamodb, "LEASE")) == 4


def test_tables_kcl_has_not_made_yet_read_as_empty(dynamodb: Any) -> None:
    assert kcl_tables.lease_owners(dynamodb, "no-such-app") == {}
    assert kcl_tables.leader(dynamodb, "no-such-app") == set()
    kcl_tables.forget_workers(dynamodb, "no-such-app")  # nothing to do, no error
