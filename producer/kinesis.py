"""The Kinesis seam: the one call the writer needs, its limits, and the real client.

The writer depends on ``KinesisClient`` (a Protocol), not on boto3: the real client, a
fault-injecting wrapper in the tests and the benchmark's null client all fit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from mypy_boto3_kinesis.type_defs import PutRecordsOutputTypeDef, PutRecordsRequestEntryTypeDef

    from core.settings import Settings

# PutRecords limits (AWS Kinesis Data Streams quotas). A record's size counts its data and its
# partition key; the call's size counts every record's.
MAX_RECORDS_PER_CALL: Final = 500
MAX_BYTES_PER_CALL: Final = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD: Final = 1024 * 1024
MAX_PARTITION_KEY_CHARS: Final = 256

# The only per-record error codes worth retrying; anything else (KMS access, ...) will fail
# the same way again.
RETRYABLE_RECORD_ERRORS: Final = frozenset(
    {"ProvisionedThroughputExceededException", "InternalFailure"}
)
# Whole-call errors that survive botocore's own retries but are still transient.
RETRYABLE_CALL_ERRORS: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "InternalFailure",
        "ServiceUnavailable",
        "ThrottlingException",
        "LimitExceededException",
    }
)


class KinesisClient(Protocol):
    """The part of boto3's Kinesis client the writer uses."""

    def put_records(
        self, *, Records: Sequence[PutRecordsRequestEntryTypeDef], StreamName: str
    ) -> PutRecordsOutputTypeDef: ...


def make_client(settings: Settings) -> KinesisClient:
    """boto3's Kinesis client for the configured endpoint and region.

    Retry mode "standard": botocore retries whole calls that fail transiently (throttling,
    5xx, connection resets) with its own jittered backoff; the writer adds what botocore
    cannot do, retrying the individual records a successful call reports as failed."""
    from botocore.config import Config

    from core.aws import client

    return client(  # type: ignore[no-any-return]
        "kinesis",
        settings,
        Config(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=30,
            tcp_keepalive=True,
        ),
    )
