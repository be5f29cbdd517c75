"""Every setting of every stage, from the environment, in one typed place.

``stockpipe local env`` prints the variables that point all of it at the local endpoints;
on AWS the CDK stack sets them on the task and the functions.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKPIPE_", frozen=True)

    region: str = Field(default="us-east-1", description="AWS region of every resource")
    # One endpoint for DynamoDB, S3, SNS and SQS (moto locally), one for Kinesis (kinesis-mock
    # locally). Unset on AWS: the SDK's regional endpoints.
    endpoint_url: str | None = None
    kinesis_endpoint_url: str | None = None

    stream_name: str = "stockpipe-ticks"
    rows_table: str = "stockpipe-rows"
    state_table: str = "stockpipe-state"
    bucket: str = "stockpipe-lake"
    ticks_prefix: str = "ticks"
    dead_letter_prefix: str = "dead-letter"
    alerts_topic_arn: str | None = None
    application_name: str = "stockpipe-consumer"  # KCL lease table name

    # The Python module the daemon runs once per shard. Only tests change it (their
    # fault-injecting wrapper, tests/consumer/faulty_kcl_app.py); production code never
    # imports test code.
    processor_module: str = Field(default="consumer.kcl_app", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    # Where the KCL MultiLangDaemon's jars are; unset: .stockpipe/kcl-jars in the checkout,
    # where `make setup` puts them. The consumer image sets it (consumer/Dockerfile).
    kcl_jars_dir: str | None = None
    # Records per GetRecords call the daemon asks for (KCL ``maxRecords``, at most 10,000).
    kcl_max_records: int = Field(default=10_000, ge=1, le=10_000)
    # Flush + checkpoint every N records or T seconds, whichever comes first. Chosen from
    # `stockpipe bench latency` / `catchup` (README, Consumer: "The flush policy"): at a full
    # shard (1,000 ticks/s) 2,000 records put rows in DynamoDB ~1.7 s after PutRecords (p50;
    # 5,000: 4.6 s), catching up is unaffected (a commit then holds a whole GetRecords), and
    # the time cap keeps a slow shard's commits - state puts, S3 objects - at one per 10 s.
    flush_records: PositiveInt = 2_000
    flush_seconds: PositiveFloat = 10.0
    # Where each shard's processor reports progress (``stockpipe consume --until-idle`` and
    # the main job's summary read it); unset: no reports.
    status_dir: str | None = None
    # DynamoDB rows expire after this many days (the table's TTL attribute is ``expires_at``).
    row_ttl_days: PositiveInt = 30
    # A tick dated more than this many seconds after its record reached the stream (Kinesis'
    # ApproximateArrivalTimestamp; the wall clock in ``stockpipe process``) is dead-lettered as
    # ``future_timestamp``: a producer's fast clock must not move a symbol's watermark ahead.
    max_clock_skew_seconds: float = Field(default=300.0, ge=0, le=86_400)
    # Per shard process, windows of symbols idle longest are dropped from memory after a commit
    # beyond this many (their state is in the state table and is loaded again on next sight).
    max_resident_windows: PositiveInt = 20_000

    # Only for local endpoints (moto accepts anything); on AWS the task role is used.
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None

    # trend/ (the scheduled alerting Lambda; tables described in trend/tables.py).
    cursor_table: str = "stockpipe-trend-cursors"  # per symbol: last evaluated row + detector
    alerts_table: str = "stockpipe-alerts"  # one item per alert: the exactly-once ledger
    # At most one significant-move alert per symbol per this many minutes (later moves are
    # grouped into one digest when the window ends).
    alert_cooldown_minutes: PositiveInt = 60
    # A claimed alert is owned this long; a run that crashed after claiming is retried once it
    # lapses. Must exceed the function's timeout, or a slow run could be taken over.
    alert_lease_seconds: PositiveInt = 900
    # Rows older than now - this are assumed to be in the rows table (ingestion lag bound):
    # only then may the wall clock close a cooldown window with no newer row of the symbol.
    alert_settle_seconds: PositiveInt = 300
    alert_ttl_days: PositiveInt = 90  # alert ledger items expire (TTL ``expires_at``)
    # Symbols a run evaluates at a time (threads): a symbol costs round trips, not CPU, so
    # this multiplies the symbols one run's budget covers (trend/runner.py, fair rotation).
    alert_workers: int = Field(default=8, ge=1, le=64)
    alerts_queue_url: str | None = None  # SQS queue subscribed to the topic (alerts tail)

    # The query layer (lake/, sql/). "auto": DuckDB over the lake when endpoint_url
    # points at a local endpoint, Athena otherwise.
    query_engine: Literal["auto", "athena", "local"] = "auto"
    athena_database: str = "stockpipe"
    athena_workgroup: str = "primary"
    athena_output_location: str | None = None  # s3://...; None: the workgroup's own setting
    lake_root: str | None = None  # a local directory read instead of the bucket (offline work)
    # Compaction merges a day's small files into files of at least this size (or one a shard).
    compact_target_mib: PositiveInt = 64
    # A day is compacted only this long after it ended (UTC): until then the consumer may still
    # rewrite one of its objects (a replay after a crash, a lagging shard catching up).
    compact_min_age_hours: NonNegativeInt = 24


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


# --- producer (appended; kept apart so concurrent edits above stay independent) ---
class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKPIPE_PRODUCER_", frozen=True)

    # A record is given up (and the run exits non-zero) after this many PutRecords attempts.
    max_attempts: PositiveInt = 8
    # How long a record may wait for a fuller batch before it is sent anyway.
    linger_seconds: PositiveFloat = 0.05


@lru_cache(maxsize=1)
def get_producer_settings() -> ProducerSettings:
    return ProducerSettings()
