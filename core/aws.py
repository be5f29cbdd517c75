"""The one place boto3 sessions and clients are made: region, credentials and endpoints come
from ``Settings`` (Kinesis has its own endpoint locally; every other service shares one), and
botocore's "standard" retry mode retries throttling and transient errors with backoff and
jitter. Every component asks here instead of building its own session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from mypy_boto3_s3.client import S3Client

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=20,
    # The state store writes in parallel threads (see sinks/state_store.py).
    max_pool_connections=32,
)


def session(settings: Settings) -> boto3.session.Session:
    """A session with the settings' region; the settings' credentials when given (only for
    local endpoints), else the SDK's own chain (the task or function role on AWS)."""
    secret = settings.aws_secret_access_key
    return boto3.session.Session(
        region_name=settings.region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=None if secret is None else secret.get_secret_value(),
    )


def endpoint_for(service: str, settings: Settings) -> str | None:
    return settings.kinesis_endpoint_url if service == "kinesis" else settings.endpoint_url


def client(service: str, settings: Settings, config: Config | None = None) -> Any:
    """A low-level client of ``service`` at its configured endpoint (typed by the caller)."""
    return session(settings).client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_for(service, settings),
        config=config or RETRY_CONFIG,
    )


def dynamodb_resource(settings: Settings) -> DynamoDBServiceResource:
    resource: Any = session(settings).resource(
        "dynamodb", endpoint_url=settings.endpoint_url, config=RETRY_CONFIG
    )
    return resource  # type: ignore[no-any-return]


def s3_client(settings: Settings) -> S3Client:
    s3: S3Client = client("s3", settings)
    return s3
