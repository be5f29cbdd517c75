"""The one place boto3 sessions and clients are made: region, credentials and endpoints come
from ``Settings`` (Kinesis has its own endpoint locally; every other service shares one). Every
component asks here instead of building its own session.

Retries (``RETRY_CONFIG``, the default of every client made here): botocore's "standard" mode.
Throttling (DynamoDB's ProvisionedThroughputExceeded, S3's SlowDown, ...), 5xx,
RequestTimeout, connection errors and read timeouts are retried with exponential backoff and
full jitter, ``rand(0, 1) * min(base * 2**i, 20 s)`` with base 1 s for throttling and 25-50 ms
otherwise, up to ``MAX_ATTEMPTS`` calls in all.

The time budget of one call that keeps failing (RETRY_BUDGET_S, README "When AWS fails for
longer"): at most MAX_ATTEMPTS x (connect + read timeout) waiting on the network plus the
throttling backoff ceilings 1 + 2 + 4 + 8 + 16 + 20 + 20 s = 71 s, so about 2.8 minutes;
a throttling storm typically costs half the backoff (~35 s) before a call gives up.
botocore's retry quota (a token bucket per client) ends the retries sooner when most calls
fail, which is why the consumer retries its commit steps once more itself, bounded by time
only (consumer/retry.py), before the exception ends the shard's process (consumer/kcl_app.py).

"adaptive" mode was not chosen: it adds client-side rate limiting that botocore still calls
experimental, and the rows sink's 32 overlapped calls share one client and one bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

from core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from mypy_boto3_s3.client import S3Client

MAX_ATTEMPTS: Final = 8  # the first call and 7 retries
# In a VPC with gateway endpoints a connection is set up in milliseconds; 2 s means it is not
# coming. A BatchWriteItem of 25 rows or a PUT of one flush's Parquet answers in well under 10 s.
CONNECT_TIMEOUT_S: Final = 2
READ_TIMEOUT_S: Final = 10
_MAX_BACKOFF_S: Final = 20  # botocore's cap on one wait
_THROTTLING_BASE_S: Final = 1
RETRY_BUDGET_S: Final = MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + sum(
    min(_THROTTLING_BASE_S * 2**i, _MAX_BACKOFF_S) for i in range(MAX_ATTEMPTS - 1)
)

RETRY_CONFIG = Config(
    # total_max_attempts counts the first call; botocore's "max_attempts" would count retries only.
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    # The rows sink keeps up to 32 calls in flight, the lake up to 8 (consumer/sinks/).
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


# The rows sink's client skips botocore's client-side parameter validation: it costs about a
# quarter of the client's CPU per BatchWriteItem (measured: 2.2 -> 1.6 ms a 25-item call), and
# the sink builds its requests from fixed code; DynamoDB still validates every request.
ROWS_CLIENT_CONFIG = RETRY_CONFIG.merge(Config(parameter_validation=False))


def dynamodb_client(settings: Settings) -> DynamoDBClient:
    """A low-level client (typed items) for the rows sink: thread-safe, so its calls overlap."""
    dynamodb: DynamoDBClient = client("dynamodb", settings, ROWS_CLIENT_CONFIG)
    return dynamodb
