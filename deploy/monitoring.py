"""What wakes the on-call, and what they look at first.

Alarms page (the ops topic) only for states a person must act on: the consumer falling behind
or not reading at all, consumer tasks missing, AWS refusing the consumer's writes for 15
minutes, bad records arriving at a real rate, the alert
Lambda failing, being throttled (its failures also land in a queue) or running out of time
before reaching every symbol (alerts arrive late), DynamoDB throttling,
producers being throttled by the stream. The dashboard shows the same signals next to the
ingest rate, anomalies and alerts sent, so "is it us or the market?" is one glance.

Consumer-side counts (records, dead letters, anomalies) come from metric filters on the
consumer's own JSON log line "committed" (consumer/processor.py): no extra API calls, no
CloudWatch permission in the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from consumer.retry import STEP_RETRIED
from trend.handlers import SERVICE as TREND_SERVICE

NAMESPACE: Final = "stockpipe"  # the trend Lambda's Powertools namespace too
COMMITTED: Final = '{ $.message = "committed" }'
STEP_RETRIED_FILTER: Final = f'{{ $.message = "{STEP_RETRIED}" }}'
# Below this many records in 5 minutes, a few bad records are not a "rate" worth a page.
DEAD_LETTER_MIN_RECORDS: Final = 100
DEAD_LETTER_MAX_FRACTION: Final = 0.01
FIVE_MINUTES: Final = Duration.minutes(5)
ONE_MINUTE: Final = Duration.minutes(1)


@dataclass(frozen=True)
class Monitored:
    stream: kinesis.IStream
    consumer_logs: logs.ILogGroup
    service: ecs.FargateService
    cluster: ecs.ICluster
    trend: lambda_.IFunction
    trend_failures: sqs.IQueue
    tables: Mapping[str, dynamodb.ITable]  # label -> table
    lag_alarm_seconds: int


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, watched: Monitored, topic: sns.ITopic
    ) -> None:
        super().__init__(scope, construct_id)
        self.watched = watched
        self._action = actions.SnsAction(topic)
        self.records = self._consumer_metric("ConsumerRecords", "$.records")
        self.dead_letters = self._consumer_metric("ConsumerDeadLetters", "$.dead_letters")
        self.anomalies = self._consumer_metric("ConsumerAnomalies", "$.anomalies")
        # One per commit step the consumer retried after botocore gave up (consumer/retry.py).
        self.step_retries = self._consumer_metric(
            "ConsumerStepRetries", "1", pattern=STEP_RETRIED_FILTER
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._consumer_alarms()
        self._trend_alarms()
        self._table_alarms()
        self.dashboard = self._dashboard()

    # --- metrics -----------------------------------------------------------------------------

    def _consumer_metric(
        self, name: str, value: str, pattern: str = COMMITTED
    ) -> cloudwatch.Metric:
        logs.MetricFilter(
            self,
            f"{name}Filter",
            log_group=self.watched.consumer_logs,
            filter_pattern=logs.FilterPattern.literal(pattern),
            metric_namespace=NAMESPACE,
            metric_name=name,
            metric_value=value,
            default_value=0,
        )
        return cloudwatch.Metric(
            namespace=NAMESPACE, metric_name=name, statistic="Sum", period=ONE_MINUTE
        )

    def _trend_metric(self, name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={"service": TREND_SERVICE},
            statistic="Sum",
            period=FIVE_MINUTES,
        )

    def _container_insights(self, name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name=name,
            dimensions_map={
                "ClusterName": self.watched.cluster.cluster_name,
                "ServiceName": self.watched.service.service_name,
            },
            statistic="Average",
            period=ONE_MINUTE,
        )

    @property
    def iterator_age(self) -> cloudwatch.Metric:
        return self.watched.stream.metric_get_records_iterator_age_milliseconds(
            statistic="Maximum", period=ONE_MINUTE
        )

    # --- alarms ------------------------------------------------------------------------------

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
            # Written for the person reading it at 3 a.m.: what broke and where to look.
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[construct_id] = alarm
        return alarm

    def _consumer_alarms(self) -> None:
        seconds = self.watched.lag_alarm_seconds
        self._alarm(
            "ConsumerLag",
            self.iterator_age,
            threshold=seconds * 1000,
            periods=3,
            # The consumer polls every shard twice a second, even an idle one: no iterator
            # age for 3 minutes means nobody is reading, which is as bad as falling behind.
            missing=cloudwatch.TreatMissingData.BREACHING,
            description=(
                f"The consumer is more than {seconds} s behind the stream (or not reading it) "
                "for 3 minutes. Check the consumer service's tasks and its log group for "
                '"processor failed" or "lease lost"; ticks are safe in the stream for 24 h.'
            ),
        )
        missing_tasks = cloudwatch.MathExpression(
            expression="desired - running",
            using_metrics={
                "desired": self._container_insights("DesiredTaskCount"),
                "running": self._container_insights("RunningTaskCount"),
            },
            period=ONE_MINUTE,
            label="consumer tasks missing",
        )
        self._alarm(
            "ConsumerTasksMissing",
            missing_tasks,
            threshold=1,
            periods=5,
            description=(
                "Fewer consumer tasks are running than desired for 5 minutes (a deployment "
                "rolls in less). Check the service's events and stopped tasks' reasons; "
                "shards of a missing task are taken over by the others after failover."
            ),
        )
        dead_letter_fraction = cloudwatch.MathExpression(
            expression=f"IF(records >= {DEAD_LETTER_MIN_RECORDS}, dead / records, 0)",
            using_metrics={
                "dead": self.dead_letters.with_(period=FIVE_MINUTES),
                "records": self.records.with_(period=FIVE_MINUTES),
            },
            period=FIVE_MINUTES,
            label="dead-letter fraction",
        )
        self._alarm(
            "DeadLetterRate",
            dead_letter_fraction,
            threshold=DEAD_LETTER_MAX_FRACTION,
            periods=1,
            description=(
                f"More than {DEAD_LETTER_MAX_FRACTION:.0%} of the records of the last 5 "
                "minutes were dead-lettered. Nothing is lost: each is in the lake's "
                "dead-letter prefix with its reason (Athena: the dead_letters_by_reason "
                "query). A producer is sending bad ticks."
            ),
        )
        self._alarm(
            "ConsumerSinksRefused",
            self.step_retries.with_(period=FIVE_MINUTES),
            threshold=1,
            periods=3,
            description=(
                "For 15 minutes AWS has kept refusing the consumer's writes (throttling, 5xx, "
                "timeouts) past botocore's retries, so the consumer retries whole commit steps "
                '(log message "retrying the step", fields step and error). Nothing is lost; '
                "ticks wait in the stream. A step failing for 2 minutes ends its worker and "
                "ECS replaces it. Check the rows/state tables' throttling alarms and the lake "
                "bucket's 503s."
            ),
        )
        self._alarm(
            "StreamWriteThrottled",
            self.watched.stream.metric_put_records_throttled_records(
                statistic="Sum", period=FIVE_MINUTES
            ),
            threshold=1,
            periods=3,
            description=(
                "Producers have been throttled by the stream for 15 minutes (they retry, but "
                "ticks arrive late). Raise the shard count, or switch to on-demand."
            ),
        )

    def _trend_alarms(self) -> None:
        trend = self.watched.trend
        self._alarm(
            "TrendErrors",
            trend.metric_errors(statistic="Sum", period=FIVE_MINUTES),
            threshold=1,
            periods=2,
            description=(
                "The alert Lambda failed in two 5-minute periods running: crossovers and big "
                "moves are not being alerted. Its log group says why; failed runs are in the "
                "trend failures queue. The next good run catches up from its cursors."
            ),
        )
        self._alarm(
            "TrendThrottles",
            trend.metric_throttles(statistic="Sum", period=FIVE_MINUTES),
            threshold=1,
            periods=2,
            description="The alert Lambda is being throttled (account concurrency).",
        )
        self._alarm(
            "TrendFailuresQueued",
            self.watched.trend_failures.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=FIVE_MINUTES
            ),
            threshold=1,
            description=(
                "A scheduled alert run failed after its retries (or could not be delivered). "
                "The message in the trend failures queue holds the event and the error."
            ),
        )

        self._alarm(
            "TrendOutOfTime",
            self._trend_metric("RunOutOfTime"),
            threshold=1,
            # One short run is normal after a backlog (a consumer outage caught up); runs that
            # cannot reach every symbol for 15 minutes mean the symbol count outgrew them.
            periods=3,
            description=(
                "Alert runs have been running out of time before reaching every symbol for 15 "
                "minutes. Nothing is lost: each run resumes where the last one stopped, but "
                "crossovers and big moves now reach people late, by up to (symbols / symbols "
                'per run) minutes. Check the trend log group for "run incomplete: out of '
                'time" and the SymbolsRemaining and SymbolsEvaluated metrics. After a '
                "consumer outage it clears by itself; if the symbol count grew, raise the "
                "function's timeout or memory (deploy/stockpipe_stack.py)."
            ),
        )

    def _table_alarms(self) -> None:
        for label, table in self.watched.tables.items():
            throttles = cloudwatch.MathExpression(
                expression="reads + writes",
                using_metrics={
                    "reads": table.metric("ReadThrottleEvents", statistic="Sum"),
                    "writes": table.metric("WriteThrottleEvents", statistic="Sum"),
                },
                period=FIVE_MINUTES,
                label=f"{label} throttle events",
            )
            self._alarm(
                f"{label}Throttled",
                throttles,
                threshold=1,
                periods=3,
                description=(
                    f"The {label} DynamoDB table throttled requests for 15 minutes (on-demand "
                    "tables throttle on a hot partition or the account's table limits). The "
                    "consumer and the Lambda retry; lag and alert delay grow."
                ),
            )

    # --- dashboard ---------------------------------------------------------------------------

    def _dashboard(self) -> cloudwatch.Dashboard:
        stream = self.watched.stream
        trend = self.watched.trend
        alarms: Sequence[cloudwatch.IAlarm] = list(self.alarms.values())
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=3)
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingest: records into the stream / consumed",
                left=[
                    stream.metric_incoming_records(statistic="Sum", period=ONE_MINUTE),
                    self.records,
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Consumer lag (ms behind the stream)",
                left=[self.iterator_age],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=self.watched.lag_alarm_seconds * 1000, label="pages"
                    )
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Anomalies (> 5 % moves) and alerts sent",
                left=[self.anomalies],
                right=[
                    self._trend_metric("CrossingAlertsSent"),
                    self._trend_metric("AnomalyAlertsSent"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Errors: dead letters, step retries, alert-run errors, failed symbols",
                left=[self.dead_letters, self.step_retries],
                right=[
                    trend.metric_errors(statistic="Sum", period=FIVE_MINUTES),
                    self._trend_metric("SymbolsFailed"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Alert runs: symbols evaluated / left for later runs, runs out of time",
                left=[
                    self._trend_metric("SymbolsEvaluated"),
                    self._trend_metric("SymbolsRemaining"),
                ],
                right=[self._trend_metric("RunOutOfTime")],
                width=24,
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Consumer tasks (desired / running) and CPU",
                left=[
                    self._container_insights("DesiredTaskCount"),
                    self._container_insights("RunningTaskCount"),
                ],
                right=[self.watched.service.metric_cpu_utilization(period=ONE_MINUTE)],
                width=24,
            )
        )
        return dashboard
