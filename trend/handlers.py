"""The scheduled Lambda: ``trend.handlers.handler`` (EventBridge Scheduler, e.g. every minute).

One function does both crossovers and significant moves: they read the same new rows of the
same symbols, so one pass, one Query per symbol and one cursor write per symbol serve both;
two functions would read everything twice and keep two cursors in step.

Nothing here calls AWS at import time: clients are built on the first invocation (and kept
for the warm container) or injected by ``run`` (tests, ``stockpipe alerts run-once``).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.settings import Settings, get_settings
from trend.budget import Budget
from trend.dynamo import (
    DynamoAlertLedger,
    DynamoCursorStore,
    DynamoRotation,
    RowsTableReader,
    StateTableSymbols,
)
from trend.errors import ConfigError, RunIncomplete
from trend.ports import AlertPublisher, Clock
from trend.runner import SAFETY_MARGIN_SECONDS, Policy, Ports, RunReport, run_once
from trend.sns import SnsPublisher

SERVICE: Final = "stockpipe-trend"
logger: Final = Logger(service=SERVICE)
metrics: Final = Metrics(namespace="stockpipe", service=SERVICE)
# The runner logs through the standard library; give it the same structured JSON output.
copy_config_to_registered_loggers(source_logger=logger, include={"trend.runner"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def policy_from(settings: Settings) -> Policy:
    return Policy(
        cooldown=timedelta(minutes=settings.alert_cooldown_minutes),
        lease=timedelta(seconds=settings.alert_lease_seconds),
        settle=timedelta(seconds=settings.alert_settle_seconds),
        workers=settings.alert_workers,
    )


def build_ports(
    settings: Settings,
    *,
    dynamodb: Any = None,
    sns: Any = None,
    publisher: AlertPublisher | None = None,
    clock: Clock = utc_now,
) -> Ports:
    """The DynamoDB/SNS implementations; clients are created here unless given."""
    if dynamodb is None or (sns is None and publisher is None):
        # Imported on first use (boto3 with it): a cold start that only logs stays light.
        from core.aws import client

        if dynamodb is None:
            dynamodb = client("dynamodb", settings)
        if sns is None and publisher is None:
            sns = client("sns", settings)
    if publisher is None:
        if settings.alerts_topic_arn is None:
            raise ConfigError(
                "STOCKPIPE_ALERTS_TOPIC_ARN is not set; set it to the SNS topic alerts go to "
                "(locally: eval $(stockpipe local env))"
            )
        publisher = SnsPublisher(sns, settings.alerts_topic_arn)
    ttl = timedelta(days=settings.alert_ttl_days)
    return Ports(
        symbols=StateTableSymbols(dynamodb, settings.state_table),
        rows=RowsTableReader(dynamodb, settings.rows_table),
        cursors=DynamoCursorStore(dynamodb, settings.cursor_table),
        ledger=DynamoAlertLedger(dynamodb, settings.alerts_table, ttl),
        publisher=publisher,
        clock=clock,
        rotation=DynamoRotation(dynamodb, settings.cursor_table),
    )


@lru_cache(maxsize=1)
def _runtime() -> tuple[Ports, Policy]:
    """Built once per container, on the first invocation (not at import)."""
    settings = get_settings()
    return build_ports(settings), policy_from(settings)


def _record(report: RunReport) -> None:
    count = MetricUnit.Count
    metrics.add_metric(name="SymbolsEvaluated", unit=count, value=report.symbols)
    metrics.add_metric(name="RowsEvaluated", unit=count, value=report.rows)
    metrics.add_metric(name="CrossingAlertsSent", unit=count, value=report.crossings_sent)
    metrics.add_metric(name="AnomalyAlertsSent", unit=count, value=report.anomaly_alerts_sent)
    metrics.add_metric(name="AlertsAlreadySent", unit=count, value=report.already_sent)
    metrics.add_metric(name="SymbolsDeferred", unit=count, value=len(report.deferred))
    metrics.add_metric(name="SymbolsSkipped", unit=count, value=len(report.skipped))
    metrics.add_metric(name="SymbolsFailed", unit=count, value=len(report.failed))
    # An out-of-time run is not an error (the rotation resumes it) but on-call must see it:
    # alerts then wait up to ceil(total / per run) schedule periods. deploy/monitoring.py
    # alarms on RunOutOfTime; SymbolsRemaining says by how much a run fell short.
    metrics.add_metric(name="RunOutOfTime", unit=count, value=int(report.out_of_time))
    metrics.add_metric(name="SymbolsRemaining", unit=count, value=report.symbols_remaining)


def run(event: EventBridgeEvent, context: LambdaContext, ports: Ports, policy: Policy) -> RunReport:
    """The handler's body with its dependencies given. Raises ``RunIncomplete`` when a symbol
    failed, after recording metrics, so the scheduler retries (safely: see trend/runner.py)."""
    owner = f"{context.aws_request_id}/{uuid.uuid4().hex[:8]}"  # unique even across retries
    logger.info("run starting", extra={"scheduled_time": event.get("time"), "owner": owner})
    # The budget is what the invocation has left minus a margin: a symbol cut short is redone
    # by the next run, an alert published as the function is killed may be sent twice.
    seconds = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    report = run_once(ports, policy, owner, Budget(max(seconds, 0.0)))
    _record(report)
    summary = summarize(report)
    if report.complete:
        logger.info("run finished", extra={"report": summary})
    else:
        logger.warning("run incomplete: out of time", extra={"report": summary})
    if report.failed:
        raise RunIncomplete(report.failed)
    return report


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """Entry point (EventBridge Scheduler/rule, ``Scheduled Event``)."""
    ports, policy = _runtime()
    return summarize(run(event, context, ports, policy))


def summarize(report: RunReport) -> dict[str, Any]:
    """The invocation's result: the report, plus ``status`` - "complete" only when every
    symbol was reached; "incomplete" when the budget ran out first (the rest are the next
    runs' share: ``symbols_remaining``, starting after ``resume_after``)."""
    return {
        **asdict(report),
        "sent": report.sent,
        "complete": report.complete,
        "status": "complete" if report.complete else "incomplete",
    }
