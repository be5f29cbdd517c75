"""The KCL lease table, made by ``stockpipe consume`` before the daemon starts.

KCL 3 makes the table itself, but in two calls: CreateTable, then an UpdateTable that adds the
owner index (``LeaseOwnerToLeaseKeyIndex``). Workers that start together (a fleet's first
deploy, the fleet test) race on that UpdateTable, and the loser's call fails (DynamoDB says
the index exists; moto answers 500). KCL's ``createGsi`` turns that into a failed first
initialization attempt *after* the worker marked its migration state machine initialized;
the retry then skips what came after the index: the worker never reports its metrics and
never starts lease assignment, so the leader never gives it a lease - and a worker in that
state that holds the leader lock assigns nobody anything. (KCL 3.1.3 and 3.5.1 alike:
``DynamicMigrationComponentsInitializer.initializeClientVersionFor3x``.) Seen once in six runs
of tests/consumer/test_daemon_fleet.py.

One CreateTable with the index in it leaves no such window: the loser of a concurrent create
gets ResourceInUseException and waits for the winner's table, and KCL, finding table and index,
creates neither. The key schema, attribute types, index and billing mode are KCL's own
(``DynamoDBLeaseSerializer``, ``DynamoDBLeaseRefresher``); tests/consumer/test_lease_table.py
compares them with a table the real daemon made."""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import ClientError

from consumer.errors import ConsumerError

LEASE_OWNER_INDEX: Final = "LeaseOwnerToLeaseKeyIndex"
_WAIT: Final = {"Delay": 1, "MaxAttempts": 120}  # a new on-demand table is ACTIVE in seconds


def lease_table_definition(name: str) -> dict[str, Any]:
    """``create_table`` arguments for the lease table ``name`` as KCL 3 would make it."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "leaseKey", "AttributeType": "S"},
            {"AttributeName": "leaseOwner", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": LEASE_OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": "leaseOwner", "KeyType": "HASH"},
                    {"AttributeName": "leaseKey", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def ensure_lease_table(dynamodb: Any, name: str) -> bool:
    """Make the lease table ``name`` with its owner index unless it exists; wait until it is
    ACTIVE. True if this call made it. A table that exists is left as it is (an application
    KCL made earlier has its index already)."""
    created = True
    try:
        dynamodb.create_table(**lease_table_definition(name))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code != "ResourceInUseException":  # not "someone made it first"
            raise ConsumerError(
                f"cannot create the KCL lease table {name!r} ({code}): the consumer's role "
                "needs dynamodb:CreateTable and DescribeTable on it (deploy/ grants both)"
            ) from error
        created = False
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=_WAIT)
    return created
