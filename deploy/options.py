"""Every knob of the stack, read once from the CDK context (``cdk deploy -c name=value`` or
deploy/cdk.json) into one typed value, so a bad value fails the synth with one line naming it.

| context | default | meaning |
|---|---|---|
| ``shards`` | ``on-demand`` | ``on-demand`` (or ``0``), else a provisioned shard count |
| ``shardsPerTask`` | 4 | consumer tasks = ceil(shards / shardsPerTask) |
| ``consumerCount`` | (from the above) | the desired task count, overriding the division |
| ``consumerMaxCount`` | shards (on-demand: 4 × desired) | autoscaling's ceiling |
| ``consumerCpu`` / ``consumerMemory`` | 512 / 1024 | Fargate task size (CPU units, MiB) |
| ``consumerImageRepository`` [``consumerImageTag``] | (build the Dockerfile) | an ECR image |
| ``alertEmails`` / ``alertPhones`` | none | market-alert recipients (comma-separated) |
| ``oncallEmails`` / ``oncallPhones`` | none | operational-alarm recipients |
| ``trendRateMinutes`` | 1 | how often the trend Lambda runs |
| ``lagAlarmSeconds`` | 120 | consumer lag (iterator age) that pages |
| ``logRetentionDays`` | 30 | CloudWatch Logs retention |
| ``deadLetterExpirationDays`` | 90 | dead-letter objects expire after this |
| ``lakeInfrequentAccessDays`` | 30 | lake objects move to Standard-IA after this |
| ``lakeGlacierDays`` | 180 | ... and to Glacier Instant Retrieval after this |
| ``athenaScanLimitGb`` | 10 | the workgroup's bytes-scanned limit per query |
| ``rowsTablePitr`` | false | point-in-time recovery on the rows table |
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from deploy.errors import ContextError

# An on-demand stream starts with 4 shards (and the KCL cannot use more workers than shards).
ON_DEMAND_INITIAL_SHARDS: Final = 4
LOG_RETENTION_DAYS: Final = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731)
# Fargate's valid (CPU units -> memory MiB) combinations for the small sizes.
FARGATE_SIZES: Final = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
_EMAIL_RE: Final = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_PHONE_RE: Final = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
_REPOSITORY_RE: Final = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")

ContextGetter = Callable[[str], object]


@dataclass(frozen=True)
class StackOptions:
    shards: int | None  # None: on-demand
    consumer_count: int
    consumer_max_count: int
    consumer_cpu: int
    consumer_memory: int
    consumer_image_repository: str | None
    consumer_image_tag: str
    alert_emails: tuple[str, ...]
    alert_phones: tuple[str, ...]
    oncall_emails: tuple[str, ...]
    oncall_phones: tuple[str, ...]
    trend_rate_minutes: int
    lag_alarm_seconds: int
    log_retention_days: int
    dead_letter_expiration_days: int
    lake_infrequent_access_days: int
    lake_glacier_days: int
    athena_scan_limit_gb: int
    rows_table_pitr: bool

    @property
    def on_demand(self) -> bool:
        return self.shards is None


def _int(get: ContextGetter, name: str, default: int, minimum: int = 1) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise ContextError(name, raw, f"an integer >= {minimum}") from None
    if value < minimum:
        raise ContextError(name, raw, f"an integer >= {minimum}")
    return value


def _bool(get: ContextGetter, name: str, default: bool) -> bool:
    raw = get(name)
    if raw is None:
        return default
    text = str(raw).strip().lower()
    if text not in ("true", "false"):
        raise ContextError(name, raw, "true or false")
    return text == "true"


def _list(get: ContextGetter, name: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    raw = get(name)
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else str(raw).split(",")
    values = tuple(str(item).strip() for item in items if str(item).strip())
    for value in values:
        if not pattern.match(value):
            raise ContextError(name, value, what)
    return values


def _shards(get: ContextGetter) -> int | None:
    raw = get("shards")
    if raw is None or str(raw) in ("0", "on-demand", "ON_DEMAND"):
        return None
    return _int(get, "shards", 1)


def read_options(get: ContextGetter) -> StackOptions:
    """The options from a context getter (``node.try_get_context``)."""
    shards = _shards(get)
    per_task = _int(get, "shardsPerTask", 4)
    known_shards = ON_DEMAND_INITIAL_SHARDS if shards is None else shards
    count = _int(get, "consumerCount", math.ceil(known_shards / per_task))
    # More tasks than shards would idle: a provisioned stream caps the ceiling; an on-demand
    # one grows its shards with traffic, so it gets headroom.
    ceiling = 4 * count if shards is None else max(count, shards)
    max_count = _int(get, "consumerMaxCount", ceiling)
    if max_count < count:
        raise ContextError("consumerMaxCount", max_count, f"at least consumerCount ({count})")

    cpu = _int(get, "consumerCpu", 512)
    if cpu not in FARGATE_SIZES:
        raise ContextError("consumerCpu", cpu, f"one of {sorted(FARGATE_SIZES)}")
    memory = _int(get, "consumerMemory", FARGATE_SIZES[cpu][0])
    if memory not in FARGATE_SIZES[cpu]:
        raise ContextError(
            "consumerMemory", memory, f"a Fargate size for {cpu} CPU units: {FARGATE_SIZES[cpu]}"
        )

    repository = get("consumerImageRepository")
    if repository is not None and not _REPOSITORY_RE.match(str(repository)):
        raise ContextError("consumerImageRepository", repository, "an ECR repository name")

    retention = _int(get, "logRetentionDays", 30)
    if retention not in LOG_RETENTION_DAYS:
        raise ContextError("logRetentionDays", retention, f"one of {LOG_RETENTION_DAYS}")
    infrequent = _int(get, "lakeInfrequentAccessDays", 30, minimum=30)
    glacier = _int(get, "lakeGlacierDays", 180)
    if glacier < infrequent + 30:
        # S3 keeps an object in Standard-IA at least 30 days before another transition.
        raise ContextError("lakeGlacierDays", glacier, ">= lakeInfrequentAccessDays + 30")

    email = "an e-mail address"
    phone = "an E.164 phone number such as +15555550100"
    return StackOptions(
        shards=shards,
        consumer_count=count,
        consumer_max_count=max_count,
        consumer_cpu=cpu,
        consumer_memory=memory,
        consumer_image_repository=None if repository is None else str(repository),
        consumer_image_tag=str(get("consumerImageTag") or "latest"),
        alert_emails=_list(get, "alertEmails", _EMAIL_RE, email),
        alert_phones=_list(get, "alertPhones", _PHONE_RE, phone),
        oncall_emails=_list(get, "oncallEmails", _EMAIL_RE, email),
        oncall_phones=_list(get, "oncallPhones", _PHONE_RE, phone),
        trend_rate_minutes=_int(get, "trendRateMinutes", 1),
        lag_alarm_seconds=_int(get, "lagAlarmSeconds", 120),
        log_retention_days=retention,
        dead_letter_expiration_days=_int(get, "deadLetterExpirationDays", 90),
        lake_infrequent_access_days=infrequent,
        lake_glacier_days=glacier,
        athena_scan_limit_gb=_int(get, "athenaScanLimitGb", 10),
        rows_table_pitr=_bool(get, "rowsTablePitr", False),
    )
