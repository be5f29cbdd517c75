"""The two DynamoDB tables the alerting owns, as data (for the CDK stack and the local stack)
and ``ensure_tables`` to create them where they are missing.

- cursor table (``settings.cursor_table``): hash ``symbol`` (S). One item a symbol:
  ``row_ts`` (S), ``position`` (S), ``cursor`` (S, JSON of trend.cursor.SymbolCursor),
  ``updated_at`` (S).
- alerts table (``settings.alerts_table``): hash ``symbol`` (S), range ``alert_key`` (S,
  ``<fixed-width UTC ts>#<golden_cross|death_cross|anomaly>``). One item an alert: ``status``
  (``pending`` | ``sent``), ``owner``, ``lease_until``, ``claimed_at``, ``sent_at``,
  ``message_id``, ``attempts``; TTL attribute ``expires_at`` (epoch seconds).

Both on-demand; neither needs an index (every access is by key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ALERTS_TTL_ATTRIBUTE: Final = "expires_at"


def table_definitions(settings: Settings) -> list[dict[str, Any]]:
    """``CreateTable`` arguments of both tables (the CDK stack mirrors these key schemas)."""
    return [
        {
            "TableName": settings.cursor_table,
            "KeySchema": [{"AttributeName": "symbol", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "symbol", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
        {
            "TableName": settings.alerts_table,
            "KeySchema": [
                {"AttributeName": "symbol", "KeyType": "HASH"},
                {"AttributeName": "alert_key", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "symbol", "AttributeType": "S"},
                {"AttributeName": "alert_key", "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    ]


def ensure_tables(dynamodb: DynamoDBClient, settings: Settings) -> list[str]:
    """Create the missing tables (and the alerts table's TTL); returns the names created."""
    existing: set[str] = set()
    for page in dynamodb.get_paginator("list_tables").paginate():
        existing.update(page.get("TableNames", []))
    created = []
    for definition in table_definitions(settings):
        name = definition["TableName"]
        if name in existing:
            continue
        dynamodb.create_table(**definition)
        dynamodb.get_waiter("table_exists").wait(TableName=name)
        created.append(name)
        if name == settings.alerts_table:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ALERTS_TTL_ATTRIBUTE},
            )
    return created
