"""Fixtures of the alerting tests: moto in-process (DynamoDB tables, the SNS topic, an SQS
queue subscribed to it capturing every message) and the real dataset as enriched rows."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from moto import mock_aws

from consumer.pipeline import TickPipeline
from consumer.sinks.state_store import DynamoStateStore
from consumer.sinks.types import SavedState
from core.contracts.row import EnrichedRow
from core.contracts.schema import row_to_item
from core.contracts.tick import encode_tick
from core.contracts.window import SymbolWindow
from core.settings import Settings
from producer.datasets import load_dataset
from tests.trend.helpers import advance_window
from trend.handlers import build_ports
from trend.runner import Policy, Ports, RunReport, run_once
from trend.tables import ensure_tables

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no metadata lookups: nothing here can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "stockpipe-test",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STOCKPIPE_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@cache
def dataset_rows() -> tuple[EnrichedRow, ...]:
    """bokeh-stocks through the consumer's own pipeline, in stream (time) order."""
    pipeline = TickPipeline()
    rows = []
    for number, tick in enumerate(load_dataset("bokeh-stocks")):
        outcome = pipeline.apply(encode_tick(tick), "shardId-000000000000", str(number))
        assert isinstance(outcome, EnrichedRow)
        rows.append(outcome)
    return tuple(rows)


@dataclass
class Stack:
    """The moto resources plus helpers to feed rows and read what SNS delivered."""

    settings: Settings
    dynamodb: Any
    sns: Any
    sqs: Any
    queue_url: str
    state_store: DynamoStateStore  # the consumer's own writer of the state table
    windows: dict[str, SymbolWindow] = field(default_factory=dict)

    def write_rows(self, rows: Sequence[EnrichedRow]) -> None:
        """One consumer commit: the rows, then the state of their symbols."""
        self.put_rows(rows)
        self.save_state(rows)

    def put_rows(self, rows: Sequence[EnrichedRow]) -> None:
        """The rows table part of a flush (row_to_item, batched puts), in the order given."""
        serialize = TypeSerializer().serialize
        ttl = timedelta(days=self.settings.row_ttl_days)
        requests = [
            {"PutRequest": {"Item": {k: serialize(v) for k, v in row_to_item(r, ttl).items()}}}
            for r in rows
        ]
        for start in range(0, len(requests), 25):
            self.dynamodb.batch_write_item(
                RequestItems={self.settings.rows_table: requests[start : start + 25]}
            )

    def save_state(self, rows: Sequence[EnrichedRow]) -> None:
        """The state part of the commit after ``rows`` were applied (stream order), written by
        consumer/sinks/state_store.py: the window (its ``last_ts`` is the watermark), shard,
        sequence number and padded position of the last row of each symbol."""
        saved: dict[str, SavedState] = {}
        for r in rows:
            window = self.windows.get(r.symbol)
            if window is not None and r.ts <= window.last_ts:
                continue  # applied before (a replayed commit)
            self.windows[r.symbol] = advance_window(window, r)
            saved[r.symbol] = SavedState(self.windows[r.symbol], r.shard_id, r.sequence_number)
        self.state_store.save(saved)

    def ports(self, clock: Any, **overrides: Any) -> Ports:
        clients = {"dynamodb": self.dynamodb, "sns": self.sns} | overrides
        return build_ports(self.settings, clock=clock, **clients)

    def policy(self, cooldown: timedelta = timedelta(days=7)) -> Policy:
        return Policy(cooldown=cooldown, lease=timedelta(minutes=15), settle=timedelta(0))

    def run(self, clock: Any, owner: str = "test", **kw: Any) -> RunReport:
        return run_once(self.ports(clock, **kw), self.policy(), owner)

    def received(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        """Every SNS notification delivered to the queue so far (drained)."""
        url = queue_url or self.queue_url
        out: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return out
            for message in batch:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def alert_identity(notification: dict[str, Any]) -> tuple[str, str, str]:
    """(symbol, ts, signal) of a delivered notification, from its ``default`` document."""
    doc = json.loads(notification["Message"])
    return doc["symbol"], doc["ts"], doc["signal"]


class FixedClock:
    """A settable clock: the tests play 'now' as the time of the newest row written."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_stack() -> Stack:
    settings = Settings(region=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for name in (settings.rows_table, settings.state_table):
        keys: list[tuple[str, Literal["HASH", "RANGE"]]] = [("symbol", "HASH")]
        if name == settings.rows_table:
            keys.append(("ts", "RANGE"))
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    ensure_tables(dynamodb, settings)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="stockpipe-alerts")["TopicArn"]
    queue_url = subscribe_queue(sns, sqs, topic_arn, "stockpipe-alerts-tail")
    settings = settings.model_copy(
        update={"alerts_topic_arn": topic_arn, "alerts_queue_url": queue_url}
    )
    state_client = boto3.resource("dynamodb", region_name=REGION).meta.client
    state_store = DynamoStateStore(state_client, settings.state_table)
    return Stack(settings, dynamodb, sns, sqs, queue_url, state_store)


def subscribe_queue(
    sns: Any, sqs: Any, topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None
) -> str:
    queue_url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {} if filter_policy is None else {"FilterPolicy": json.dumps(filter_policy)}
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return queue_url


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        made = make_stack()
        yield made
        made.state_store.close()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
