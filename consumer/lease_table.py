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
compares them with a table the real daemon made.

The same holds for KCL 3's migration state, the lease table's ``Migration3.0`` item. A worker
that finds none creates one (``CLIENT_VERSION_3X``) with a conditional put; of workers that
start together, the losers' first initialization fails ("Failed to create migration state")
after the state machine was marked initialized, the retry skips the leader decider and the
assignment mode, and that worker never takes a lease and then exits. (KCL 3.5.1:
``AbstractMigrationClientVersionState.ensureDdbStateMatchesClientVersion``; one run in five
of the fleet test.) So ``stockpipe consume`` writes that item first, as KCL would, if it is
absent: every worker then finds ``CLIENT_VERSION_3X`` and writes nothing. The item's
attributes are KCL's own (``MigrationState.serialize``); the tests compare them with the
item a real daemon wrote."""

from __future__ import annotations

import time
from typing import Any, Final

from botocore.exceptions import ClientError

from consumer.errors import ConsumerError

LEASE_OWNER_INDEX: Final = "LeaseOwnerToLeaseKeyIndex"
# KCL 3's migration state item (MigrationState.MIGRATION_HASH_KEY and its entity type) and the
# client version a new application runs (clientVersionConfig left at CLIENT_VERSION_CONFIG_3X).
MIGRATION_STATE_KEY: Final = "Migration3.0"
MIGRATION_ENTITY_TYPE: Final = "CLIENT_VERSION_MIGRATION"
CLIENT_VERSION: Final = "CLIENT_VERSION_3X"
# KCL 3.0-3.4 kept coordinator state (the migration state among it) in a table of its own.
LEGACY_COORDINATOR_SUFFIX: Final = "-CoordinatorState"
_WAIT: Final = {"Delay": 1, "MaxAttempts": 120}  # a new on-demand table is ACTIVE in seconds


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


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
        code = _error_code(error)
        if code != "ResourceInUseException":  # not "someone made it first"
            raise ConsumerError(
                f"cannot create the KCL lease table {name!r} ({code}): the consumer's role "
                "needs dynamodb:CreateTable and DescribeTable on it (deploy/ grants both)"
            ) from error
        created = False
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=_WAIT)
    return created


def migration_state_item(worker_id: str, now_ms: int) -> dict[str, Any]:
    """The ``Migration3.0`` item as a KCL 3 worker writes it on an application's first start:
    client version 3.x, modified by ``worker_id``, with the one history entry (from INIT)."""
    history = {
        "cv": {"S": "CLIENT_VERSION_INIT"},
        "mb": {"S": worker_id},
        "mts": {"N": f"{now_ms}"},
    }
    return {
        "leaseKey": {"S": MIGRATION_STATE_KEY},
        "entityType": {"S": MIGRATION_ENTITY_TYPE},
        "cv": {"S": CLIENT_VERSION},
        "mb": {"S": worker_id},
        "mts": {"N": f"{now_ms}"},
        "h": {"L": [{"M": history}]},
    }


def _has_legacy_coordinator_table(dynamodb: Any, name: str) -> bool:
    legacy = f"{name}{LEGACY_COORDINATOR_SUFFIX}"
    try:
        dynamodb.describe_table(TableName=legacy)
    except ClientError as error:
        code = _error_code(error)
        if code == "ResourceNotFoundException":
            return False
        raise ConsumerError(
            f"cannot tell whether KCL's table {legacy!r} exists ({code}): the consumer's role "
            "needs dynamodb:DescribeTable on it (deploy/ grants it)"
        ) from error
    return True


def ensure_migration_state(dynamodb: Any, name: str, worker_id: str) -> bool:
    """Write KCL's migration state into the lease table ``name`` unless an item is there;
    True if this call wrote it. An existing item (any client version, say an application
    migrating from KCL 2) is left as it is. So is an application that KCL 3.0-3.4 ran: while
    its ``-CoordinatorState`` table exists, KCL 3.5 keeps the migration state there (its
    ``TableMigrationStateMachineImpl``), and an item in the lease table would only confuse it."""
    if _has_legacy_coordinator_table(dynamodb, name):
        return False
    try:
        dynamodb.put_item(
            TableName=name,
            Item=migration_state_item(worker_id, int(time.time() * 1000)),
            ConditionExpression="attribute_not_exists(leaseKey)",
        )
    except ClientError as error:
        code = _error_code(error)
        if code == "ConditionalCheckFailedException":  # there already: nothing to do
            return False
        raise ConsumerError(
            f"cannot write KCL's migration state to the lease table {name!r} ({code}): the "
            "consumer's role needs dynamodb:PutItem on it (deploy/ grants it)"
        ) from error
    return True
