"""Create what the pipeline uses on the local stack: the stream, the tables, the bucket, the
alerts topic and an SQS queue subscribed to it (so a developer sees what would be sent)."""

from __future__ import annotations

from typing import Any

import boto3

from consumer.tables import create_tables
from core.settings import Settings
from stockpipe.local.stack import FAKE_KEY_ID, FAKE_SECRET, REGION, StackState, alerts_topic_name


def _client(service: str, endpoint: str) -> Any:
    session: Any = boto3.session.Session(
        region_name=REGION, aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET
    )
    return session.client(service, endpoint_url=endpoint)


def create_resources(state: StackState) -> None:
    """Straight to moto, never through the proxy: set-up must not meet injected faults."""
    settings = Settings()
    kinesis = _client("kinesis", state.kinesis_endpoint_url)
    if settings.stream_name not in kinesis.list_streams()["StreamNames"]:
        kinesis.create_stream(StreamName=settings.stream_name, ShardCount=state.shards)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=settings.stream_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    create_tables(_client("dynamodb", state.moto_endpoint_url), settings)
    _create_trend_tables(_client("dynamodb", state.moto_endpoint_url), settings)
    s3 = _client("s3", state.moto_endpoint_url)
    s3.create_bucket(Bucket=settings.bucket)
    sns = _client("sns", state.moto_endpoint_url)
    topic_arn = sns.create_topic(Name=alerts_topic_name(settings.stream_name))["TopicArn"]
    sqs = _client("sqs", state.moto_endpoint_url)
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
