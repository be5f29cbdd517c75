"""What KCL's own DynamoDB table says about a local fleet: who holds which lease, who leads,
and forgetting a worker that was killed. Read by the fleet benchmark and the fleet tests.

KCL 3.5 keeps everything of a new application in its lease table (named after the
application), one item per entity, told apart by ``entityType``: ``LEASE`` (one per shard,
``leaseKey`` the shard id), ``WORKER_METRIC_STATS`` (one per worker, ``leaseKey`` the worker
id), ``LEADER`` (the leader lock, ``leaseKey`` "Leader", ``ownerName`` the leader) and
``CLIENT_VERSION_MIGRATION``. The names are KCL's (its ``DynamoDBLeaseSerializer``,
``WorkerMetricStats`` and ``CoordinatorState``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

ENTITY_TYPE: Final = "entityType"
LEASE: Final = "LEASE"
WORKER_METRICS: Final = "WORKER_METRIC_STATS"
LEADER: Final = "LEADER"


def scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table`` (typed values), or none while KCL has not created it yet."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    try:
        while True:
            page = dynamodb.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return []


def _of_type(items: list[dict[str, Any]], entity: str) -> list[dict[str, Any]]:
    return [i for i in items if i.get(ENTITY_TYPE, {}).get("S") == entity]


def leases(dynamodb: Any, application: str) -> list[dict[str, Any]]:
    """Every lease item (one per shard, finished ones included), typed values."""
    return _of_type(scan(dynamodb, application), LEASE)


def lease_owners(dynamodb: Any, application: str) -> dict[str, str]:
    """Open shard -> its lease owner ("" for none); finished shards (SHARD_END) left out."""
    return {
        item["leaseKey"]["S"]: item.get("leaseOwner", {}).get("S", "")
        for item in leases(dynamodb, application)
        if item.get("checkpoint", {}).get("S") != "SHARD_END"
    }


def leader(dynamodb: Any, application: str) -> set[str]:
    """The worker holding the leader lock (a set: empty while nobody leads)."""
    return {
        item["ownerName"]["S"]
        for item in _of_type(scan(dynamodb, application), LEADER)
        if "ownerName" in item
    }


def forget_workers(dynamodb: Any, application: str, workers: Collection[str] | None = None) -> None:
    """What time does after a kill -9, sooner: KCL 3's leader keeps counting a dead worker
    until its metrics item goes stale (minutes, no property shortens it) and may assign it
    leases meanwhile. Deletes the metrics items of ``workers``; with ``None`` (no worker is
    alive) every metrics item and the leader lock, which a dead leader holds for about two
    minutes. Leases are left alone: they expire, and their checkpoints are the point."""
    items = scan(dynamodb, application)
    doomed = [
        item
        for item in _of_type(items, WORKER_METRICS)
        if workers is None or item["leaseKey"]["S"] in workers
    ]
    if workers is None:
        doomed += _of_type(items, LEADER)
    for item in doomed:
        dynamodb.delete_item(TableName=application, Key={"leaseKey": item["leaseKey"]})
