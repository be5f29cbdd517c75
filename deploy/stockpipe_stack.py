"""The whole system on AWS: Kinesis -> KCL consumer on ECS Fargate -> DynamoDB + S3, and the
scheduled trend Lambda alerting through SNS.

Environment-agnostic (no account/region at synth, no lookups): ``cdk synth`` never contacts
AWS, and one template deploys to whichever account/region the CLI's credentials name.

Context parameters (``cdk deploy -c name=value``):

- ``shards``: ``0`` / ``on-demand`` (default) for an on-demand stream, else a shard count.
- ``consumerCount``: Fargate tasks (default 1; KCL balances the shards' leases over them).
- ``consumerCpu`` / ``consumerMemory``: task size (default 1024 / 2048 MiB).
- ``consumerImageRepository`` [+ ``consumerImageTag``]: run an image from an ECR repository of
  this account instead of building consumer/Dockerfile (the default, built at deploy time).
- ``alertEmails`` / ``alertPhones``: comma-separated e-mail addresses / E.164 numbers to
  subscribe to the alerts topic.
- ``logRetentionDays`` (default 30), ``deadLetterExpirationDays`` (default 90).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from aws_cdk import (
    Aws,
    BundlingOptions,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from consumer import tables as consumer_tables
from deploy.lambda_bundle import PipBundling
from stockpipe.settings import Settings
from trend import tables as trend_tables

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
CONSUMER_DOCKERFILE: Final = "consumer/Dockerfile"
TREND_HANDLER: Final = "trend.handlers.handler"
# ECS sends SIGTERM, then SIGKILL after this; the daemon's graceful shutdown fits inside it.
CONSUMER_STOP_TIMEOUT_SECONDS: Final = 30
TREND_TIMEOUT_SECONDS: Final = 60
TREND_RATE_MINUTES: Final = 1
# The KCL 3 metadata tables, named after the application (KCL creates them itself).
KCL_TABLE_SUFFIXES: Final = ("", "-CoordinatorState", "-WorkerMetricStats")

LOG_RETENTION: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}

# The defaults of every setting, without reading this shell's environment (which may point at
# the local stack).
DEFAULTS: Final = Settings.model_construct()


def settings_env(**values: str) -> dict[str, str]:
    """Container/function environment from ``Settings`` field names: a name that is not a
    setting fails the synth instead of being silently ignored at run time."""
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"not fields of stockpipe.settings.Settings: {unknown}")
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name.upper()}": value for name, value in values.items()}


_ATTRIBUTE_TYPES: Final = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def table_keys(definition: dict[str, Any]) -> dict[str, Any]:
    """``dynamodb.Table`` keyword arguments from a ``CreateTable`` definition (the same data
    the local stack creates its tables from: consumer/tables.py, trend/tables.py)."""
    types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}
    keys: dict[str, Any] = {}
    for element in definition["KeySchema"]:
        name = element["AttributeName"]
        attribute = dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[types[name]])
        keys["partition_key" if element["KeyType"] == "HASH" else "sort_key"] = attribute
    if definition.get("BillingMode", "PAY_PER_REQUEST") != "PAY_PER_REQUEST":
        raise ValueError(f"only on-demand tables are declared here: {definition['TableName']}")
    keys["billing_mode"] = dynamodb.BillingMode.PAY_PER_REQUEST
    return keys


def _definitions_by_name(definitions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["TableName"]: d for d in definitions}


class StockpipeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.application_name = f"{self.stack_name}-consumer"

        self.stream = self._stream()
        self.rows_table, self.state_table = self._consumer_tables()
        self.cursor_table, self.alerts_table = self._trend_tables()
        self.bucket = self._bucket()
        self.topic = self._topic()
        self.consumer_service = self._consumer()
        self.trend_function = self._trend()
        self._outputs()

    # --- context -----------------------------------------------------------------------------

    def _context(self, name: str, default: str) -> str:
        value = self.node.try_get_context(name)
        return default if value is None else str(value)

    def _context_int(self, name: str, default: int) -> int:
        raw = self._context(name, str(default))
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"context {name} must be an integer, not {raw!r}") from None

    def _context_list(self, name: str) -> list[str]:
        value = self.node.try_get_context(name)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]

    # --- data --------------------------------------------------------------------------------

    def _stream(self) -> kinesis.Stream:
        shards = self._context("shards", "on-demand")
        common: dict[str, Any] = {
            "encryption": kinesis.StreamEncryption.MANAGED,
            "retention_period": Duration.hours(24),
        }
        if shards in ("0", "on-demand", "ON_DEMAND"):
            return kinesis.Stream(self, "Ticks", stream_mode=kinesis.StreamMode.ON_DEMAND, **common)
        return kinesis.Stream(
            self,
            "Ticks",
            stream_mode=kinesis.StreamMode.PROVISIONED,
            shard_count=self._context_int("shards", 1),
            **common,
        )

    def _table(self, construct_id: str, definition: dict[str, Any], **extra: Any) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            **table_keys(definition),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
            **extra,
        )

    def _consumer_tables(self) -> tuple[dynamodb.Table, dynamodb.Table]:
        definitions = _definitions_by_name(consumer_tables.table_definitions(DEFAULTS))
        rows = self._table(
            "RowsTable",
            definitions[DEFAULTS.rows_table],
            time_to_live_attribute=consumer_tables.TTL_SPECIFICATION["AttributeName"],
        )
        state = self._table("StateTable", definitions[DEFAULTS.state_table])
        return rows, state

    def _trend_tables(self) -> tuple[dynamodb.Table, dynamodb.Table]:
        definitions = _definitions_by_name(trend_tables.table_definitions(DEFAULTS))
        cursors = self._table("TrendCursorTable", definitions[DEFAULTS.cursor_table])
        alerts = self._table(
            "AlertsTable",
            definitions[DEFAULTS.alerts_table],
            time_to_live_attribute=trend_tables.ALERTS_TTL_ATTRIBUTE,
        )
        return cursors, alerts

    def _bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Lake",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-dead-letters",
                    prefix=f"{DEFAULTS.dead_letter_prefix}/",
                    expiration=Duration.days(self._context_int("deadLetterExpirationDays", 90)),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
        )

    def _topic(self) -> sns.Topic:
        topic = sns.Topic(self, "Alerts", display_name="stockpipe alerts", enforce_ssl=True)
        for email in self._context_list("alertEmails"):
            topic.add_subscription(subscriptions.EmailSubscription(email))
        for phone in self._context_list("alertPhones"):
            topic.add_subscription(subscriptions.SmsSubscription(phone))
        return topic

    def _log_group(self, construct_id: str) -> logs.LogGroup:
        days = self._context_int("logRetentionDays", 30)
        retention = LOG_RETENTION.get(days)
        if retention is None:
            raise ValueError(f"logRetentionDays must be one of {sorted(LOG_RETENTION)}")
        return logs.LogGroup(
            self, construct_id, retention=retention, removal_policy=RemovalPolicy.DESTROY
        )

    # --- consumer ----------------------------------------------------------------------------

    def _consumer_image(self) -> ecs.ContainerImage:
        repository = self.node.try_get_context("consumerImageRepository")
        if repository:
            return ecs.ContainerImage.from_ecr_repository(
                ecr.Repository.from_repository_name(self, "ConsumerRepository", str(repository)),
                tag=self._context("consumerImageTag", "latest"),
            )
        # Staged at synth (a copy of the context that /.dockerignore allows), built and pushed
        # by `cdk deploy`: synth needs no Docker.
        return ecs.ContainerImage.from_asset(
            str(PROJECT_ROOT),
            file=CONSUMER_DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )

    def consumer_environment(self) -> dict[str, str]:
        return settings_env(
            region=Aws.REGION,
            stream_name=self.stream.stream_name,
            rows_table=self.rows_table.table_name,
            state_table=self.state_table.table_name,
            bucket=self.bucket.bucket_name,
            ticks_prefix=DEFAULTS.ticks_prefix,
            dead_letter_prefix=DEFAULTS.dead_letter_prefix,
            application_name=self.application_name,
            row_ttl_days=str(DEFAULTS.row_ttl_days),
        )

    def _consumer(self) -> ecs.FargateService:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
            ],
        )
        cluster = ecs.Cluster(self, "Cluster", vpc=vpc)
        task = ecs.FargateTaskDefinition(
            self,
            "ConsumerTask",
            cpu=self._context_int("consumerCpu", 1024),
            memory_limit_mib=self._context_int("consumerMemory", 2048),
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        task.add_container(
            "consumer",
            image=self._consumer_image(),
            environment=self.consumer_environment(),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="consumer", log_group=self._log_group("ConsumerLogs")
            ),
            stop_timeout=Duration.seconds(CONSUMER_STOP_TIMEOUT_SECONDS),
            # tini as PID 1: forwards SIGTERM to `stockpipe consume` and reaps orphans.
            linux_parameters=ecs.LinuxParameters(self, "ConsumerLinux", init_process_enabled=True),
        )
        self._grant_consumer(task.task_role)
        return ecs.FargateService(
            self,
            "Consumer",
            cluster=cluster,
            task_definition=task,
            desired_count=self._context_int("consumerCount", 1),
            assign_public_ip=True,  # public subnets, no NAT: egress to the AWS APIs only
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )

    def _grant_consumer(self, role: iam.IRole) -> None:
        self.stream.grant_read(role)
        self.rows_table.grant_read_write_data(role)
        self.state_table.grant_read_write_data(role)
        # The lake: write, and read/delete its own objects (a replay rewrites an object
        # keeping the rows it skipped, or deletes it; consumer/sinks/lake.py). ListBucket
        # makes a missing object a 404 (NoSuchKey) rather than a 403.
        prefixes = (DEFAULTS.ticks_prefix, DEFAULTS.dead_letter_prefix)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                resources=[self.bucket.arn_for_objects(f"{prefix}/*") for prefix in prefixes],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn])
        )
        # The KCL's own tables (created by the daemon on first start).
        item_actions = [
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Scan",
        ]
        lease_table = self.kcl_table_arn("")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=item_actions,
                resources=[self.kcl_table_arn(suffix) for suffix in KCL_TABLE_SUFFIXES],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[f"{lease_table}/index/*"])
        )
        # KCL metrics (metricsLevel SUMMARY): PutMetricData has no resource-level permissions;
        # the condition keeps it to the KCL's namespace (the application name).
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": self.application_name}},
            )
        )

    def kcl_table_arn(self, suffix: str) -> str:
        return self.format_arn(
            service="dynamodb", resource="table", resource_name=f"{self.application_name}{suffix}"
        )

    # --- trend -------------------------------------------------------------------------------

    def trend_environment(self) -> dict[str, str]:
        return settings_env(
            region=Aws.REGION,
            rows_table=self.rows_table.table_name,
            state_table=self.state_table.table_name,
            cursor_table=self.cursor_table.table_name,
            alerts_table=self.alerts_table.table_name,
            alerts_topic_arn=self.topic.topic_arn,
        )

    def _trend(self) -> lambda_.Function:
        # Its own role rather than the default one with AWSLambdaBasicExecutionRole (logs:* on
        # every log group): it writes only to its own log group.
        log_group = self._log_group("TrendLogs")
        role = iam.Role(self, "TrendRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            "Trend",
            runtime=lambda_.Runtime.PYTHON_3_11,
            architecture=lambda_.Architecture.X86_64,
            handler=TREND_HANDLER,
            code=lambda_.Code.from_asset(
                str(PROJECT_ROOT),
                bundling=BundlingOptions(
                    image=lambda_.Runtime.PYTHON_3_11.bundling_image,
                    local=PipBundling(),
                    command=["false"],  # never used: PipBundling bundles or raises
                ),
            ),
            timeout=Duration.seconds(TREND_TIMEOUT_SECONDS),
            memory_size=512,
            environment=self.trend_environment(),
            role=role,
            log_group=log_group,
            # The scheduler invokes asynchronously; a failed run is retried once, and the next
            # scheduled run picks up whatever is left anyway (cursors, alert ledger).
            retry_attempts=1,
            max_event_age=Duration.minutes(5),
        )
        self.rows_table.grant_read_data(function)
        self.state_table.grant_read_data(function)
        self.cursor_table.grant_read_write_data(function)
        self.alerts_table.grant_read_write_data(function)
        self.topic.grant_publish(function)

        scheduler.Schedule(
            self,
            "TrendSchedule",
            description="stockpipe trend: crossovers and significant moves -> SNS",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(TREND_RATE_MINUTES)),
            target=scheduler_targets.LambdaInvoke(
                function,
                # An EventBridge "Scheduled Event" shape, with the scheduled time.
                input=scheduler.ScheduleTargetInput.from_object(
                    {
                        "source": "aws.scheduler",
                        "detail-type": "Scheduled Event",
                        "time": scheduler.ContextAttribute.scheduled_time,
                        "detail": {},
                    }
                ),
                retry_attempts=2,
                max_event_age=Duration.minutes(2),
            ),
        )
        return function

    # --- outputs -----------------------------------------------------------------------------

    def _outputs(self) -> None:
        """What a producer or `stockpipe query` needs: each output's description is the
        STOCKPIPE_* variable its value goes in."""
        fields = {
            "region": Aws.REGION,
            "stream_name": self.stream.stream_name,
            "rows_table": self.rows_table.table_name,
            "state_table": self.state_table.table_name,
            "bucket": self.bucket.bucket_name,
            "cursor_table": self.cursor_table.table_name,
            "alerts_table": self.alerts_table.table_name,
            "alerts_topic_arn": self.topic.topic_arn,
            "application_name": self.application_name,
        }
        for field, value in fields.items():
            (variable,) = settings_env(**{field: value})
            output_id = "Env" + "".join(part.title() for part in field.split("_"))
            CfnOutput(self, output_id, value=value, description=variable)
