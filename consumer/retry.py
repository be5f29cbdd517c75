"""Bounded retries with exponential backoff and full jitter, for what the processor retries
itself: the checkpoint, and each commit step whose AWS call failed after botocore's own
retries (``is_transient``). boto3's calls are first retried by botocore (core/aws.py).

Full jitter (a uniform draw in [0, min(cap, base * 2**n)]) spreads the retries of the many
shard processors that a throttled lease table refused together. The retries stop when the
next wait would end past the budget: the caller then fails (the process exits and the
daemon's replacement resumes at the last checkpoint, see README "When AWS fails for longer").

Why the commit steps need a retry of their own: botocore's standard mode also keeps a retry
quota per client (a bucket of 500 tokens; a retried 5xx or timeout costs 14, a retried
throttle 5, a success gives one back). Under a fault storm - S3 answering SlowDown to a third
of the PUTs for a minute, say - the bucket runs dry and botocore stops retrying at all, so one
unlucky call ends the process, and with it (KCL 3's daemon exits when a child does) every
shard of the worker. The step retry has no quota: it is bounded by time only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from consumer.errors import SinkBusy

# The log message of each step retry: CloudWatch counts them (deploy/monitoring.py).
STEP_RETRIED: Final = "AWS call failed after its retries, retrying the step"

# Error codes that say "not now" rather than "never": throttling (botocore's list for
# DynamoDB, S3 and the rest), the 5xx family, and a transaction that met another or was
# throttled (its reasons had no failed condition: those become FencedOut/StateSuperseded).
TRANSIENT_ERROR_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
        "TransactionCanceledException",
    }
)


def is_transient(error: BaseException) -> bool:
    """An AWS failure that waiting can cure: throttling, a 5xx, a timeout, a reset or refused
    connection, or rows DynamoDB kept leaving unprocessed. Not: a refused condition, a
    missing table or bucket, denied access, a malformed request - or a lost lease."""
    if isinstance(error, SinkBusy | ConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_ERROR_CODES or (isinstance(status, int) and status >= 500)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 0.2
    cap_s: float = 5.0
    budget_s: float = 20.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delays(self, clock: Callable[[], float]) -> Iterator[float]:
        """The waits before each retry, while they fit in the budget (counted from the first
        call, with ``clock`` in seconds)."""
        deadline = clock() + self.budget_s
        attempt = 0
        while True:
            delay = self.rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))
            if clock() + delay > deadline:
                return
            yield delay
            attempt += 1
