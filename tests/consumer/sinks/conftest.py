"""Fixtures of the sink tests: fake credentials, moto in-process (``mock_aws``), the
consumer's tables created by ``consumer.tables.create_tables``, and the lake bucket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from consumer.sinks.lake import S3Lake
from consumer.sinks.state_store import DynamoStateStore
from consumer.tables import create_tables
from core.contracts.row import EnrichedRow
from core.contracts.tick import Tick
from core.settings import Settings
from tests.consumer.sinks.helpers import REGION, enrich

# The last ~120 trading days of the real dataset: five symbols a day, one UTC date a day.
LAKE_TICKS = 600


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no instance-metadata lookups: nothing here can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STOCKPIPE_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        region=REGION,
        endpoint_url=None,
        rows_table="sinks-test-rows",
        state_table="sinks-test-state",
        bucket="sinks-test-lake",
        ticks_prefix="ticks",
        dead_letter_prefix="dead-letter",
    )


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    """One session for every test, with fake keys of its own: a new client of a warm session
    costs milliseconds, of a fresh one a tenth of a second or more."""
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name=REGION,
    )


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process for the test's duration (after ``aws_env`` set the credentials)."""
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None, boto_session: boto3.session.Session, settings: Settings) -> Any:
    """A DynamoDB resource with the rows and state tables, as the consumer creates them."""
    resource = boto_session.resource("dynamodb")
    create_tables(resource.meta.client, settings)
    return resource


@pytest.fixture
def dynamodb_client(aws: None, boto_session: boto3.session.Session) -> Any:
    """A plain (low-level) client: items come back typed ({"N": ...}), as stored."""
    return boto_session.client("dynamodb")


@pytest.fixture
def s3(aws: None, boto_session: boto3.session.Session, settings: Settings) -> Any:
    client = boto_session.client("s3")
    client.create_bucket(Bucket=settings.bucket)
    return client


@pytest.fixture
def lake(s3: Any, settings: Settings) -> S3Lake:
    return S3Lake(s3, settings.bucket, settings.ticks_prefix, settings.dead_letter_prefix)


@pytest.fixture
def state_store(dynamodb: Any, settings: Settings) -> Iterator[DynamoStateStore]:
    store = DynamoStateStore(dynamodb.meta.client, settings.state_table)
    yield store
    store.close()


@pytest.fixture(scope="session")
def lake_ticks(real_ticks: list[Tick]) -> list[Tick]:
    return real_ticks[-LAKE_TICKS:]


@pytest.fixture(scope="session")
def lake_rows(lake_ticks: list[Tick]) -> list[EnrichedRow]:
    """The lake ticks as one shard's rows (sequence numbers and arrival times in order)."""
    return enrich(lake_ticks)
