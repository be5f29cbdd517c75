"""Create what the pipeline uses on the local stack: the stream, the tables, the bucket, the
alerts topic and an SQS queue subscribed to it (so a developer sees what would be sent)."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from consumer.tables import create_tables
from core import aws
from core.settings import Settings
from stockpipe.local.names import FAKE_KEY_ID, FAKE_SECRET, REGION, alerts_topic_name


def _client(service: str, endpoint: str) -> Any:
    return aws.client(
        service,
        Settings(
            region=REGION,
            endpoint_url=endpoint,
            kinesis_endpoint_url=endpoint,
            aws_access_key_id=FAKE_KEY_ID,
            aws_secret_access_key=SecretStr(FAKE_SECRET),
        ),
    )


def create_resources(endpoint_url: str, kinesis_endpoint_url: str, shards: int) -> None:
    """``endpoint_url`` is moto's own, never the proxy's: set-up must not meet injected faults."""
    settings = Settings()
    kinesis = _client("kinesis", kinesis_endpoint_url)
    if settings.stream_name not in kinesis.list_streams()["StreamNames"]:
        kinesis.create_stream(StreamName=settings.stream_name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=settings.stream_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    create_tables(_client("dynamodb", endpoint_url), settings)
    _create_trend_tables(_client("dynamodb", endpoint_url), settings)
    s3 = _client("s3", endpoint_url)
    s3.create_bucket(Bucket=settings.bucket)
    sns = _client("sns", endpoint_url)
    topic_arn = sns.create_topic(Name=alerts_topic_name(settings.stream_name))["TopicArn"]
    sqs = _client("sqs", endpoint_url)
    queue_url = sqs.create_queue(QueueName=f"{settings.stream_name}-alerts-tail")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "false"},
    )


def _create_trend_tables(client: Any, settings: Settings) -> None:
    """The alerting Lambdas' tables, when trend/ defines them."""
    try:
        from trend import tables as trend_tables
    except ImportError:
        return
    trend_tables.ensure_tables(client, settings)
