"""What KCL 3's own DynamoDB tables say about a local fleet: who holds which lease, who leads,
and forgetting a worker that was killed. Read by the fleet benchmark and the fleet tests; the
table and attribute names are KCL's (``<app>`` is the lease table, ``<app>-CoordinatorState``
holds the leader lock as the item ``Leader``, ``<app>-WorkerMetricStats`` one row per worker).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table`` (typed values), or none while KCL has not created it yet."""
    try:
        return list(dynamodb.scan(TableName=table, ConsistentRead=True)["Items"])
    except dynamodb.exceptions.ResourceNotFoundException:
        return []


def lease_owners(dynamodb: Any, application: str) -> dict[str, str]:
    """Open shard -> its lease owner ("" for none); finished shards (SHARD_END) left out."""
    return {
        item["leaseKey"]["S"]: item.get("leaseOwner", {}).get("S", "")
        for item in scan(dynamodb, application)
        if item.get("checkpoint", {}).get("S") != "SHARD_END"
    }


def leader(dynamodb: Any, application: str) -> set[str]:
    """Every string of the leader-lock item: the leader's worker id is among them."""
    for item in scan(dynamodb, f"{application}-CoordinatorState"):
        values = {v["S"] for v in item.values() if "S" in v}
        if "Leader" in values:
            return values
    return set()


def forget_workers(dynamodb: Any, application: str, workers: Collection[str] | None = None) -> None:
    """What time does after a kill -9, sooner: KCL 3's leader keeps counting a dead worker
    until its metrics row goes stale (minutes, no property shortens it) and may assign it
    leases meanwhile. Deletes the metrics rows of ``workers``; with ``None`` (no worker is
    alive) every metrics row and the leader lock, which a dead leader holds for about two
    minutes."""
    tables = [(f"{application}-WorkerMetricStats", workers)]
    if workers is None:
        tables.append((f"{application}-CoordinatorState", {"Leader"}))
    for table, marks in tables:
        items = scan(dynamodb, table)
        if not items:
            continue
        schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
        key_names = [k["AttributeName"] for k in schema]
        for item in items:
            strings = {v.get("S") for v in item.values()}
            if marks is None or strings & set(marks):
                dynamodb.delete_item(TableName=table, Key={k: item[k] for k in key_names})
