"""Every setting of every stage, from the environment, in one typed place.

``stockpipe local env`` prints the variables that point all of it at the local endpoints;
on AWS the CDK stack sets them on the task and the functions.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr
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

    # Flush + checkpoint every N records or T seconds, whichever comes first.
    flush_records: PositiveInt = 5_000
    flush_seconds: PositiveFloat = 10.0
    # DynamoDB rows expire after this many days (the table's TTL attribute is ``expires_at``).
    row_ttl_days: PositiveInt = 30

    # Only for local endpoints (moto accepts anything); on AWS the task role is used.
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
