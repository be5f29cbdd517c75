"""The consumer's DynamoDB tables as data: the local stack and the tests create them from
here; deploy/ declares the same keys for AWS."""

from __future__ import annotations

from typing import Any, Final

from core.contracts.schema import ROWS_HASH_KEY, ROWS_RANGE_KEY, ROWS_TTL_ATTRIBUTE
from core.settings import Settings


def table_definitions(settings: Settings) -> list[dict[str, Any]]:
    """``create_table`` arguments (on-demand billing) for the rows and state tables."""
    return [
        {
            "TableName": settings.rows_table,
            "KeySchema": [
                {"AttributeName": ROWS_HASH_KEY, "KeyType": "HASH"},
                {"AttributeName": ROWS_RANGE_KEY, "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": ROWS_HASH_KEY, "AttributeType": "S"},
                {"AttributeName": ROWS_RANGE_KEY, "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {
            "TableName": settings.state_table,
            "KeySchema": [{"AttributeName": "symbol", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "symbol", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    ]


TTL_SPECIFICATION: Final = {"Enabled": True, "AttributeName": ROWS_TTL_ATTRIBUTE}


def create_tables(client: Any, settings: Settings) -> None:
    """Create the tables if absent (idempotent) and enable TTL on the rows table."""
    existing = set(client.list_tables()["TableNames"])
    for definition in table_definitions(settings):
        if definition["TableName"] not in existing:
            client.create_table(**definition)
            client.get_waiter("table_exists").wait(TableName=definition["TableName"])
    client.update_time_to_live(
        TableName=settings.rows_table, TimeToLiveSpecification=TTL_SPECIFICATION
    )
