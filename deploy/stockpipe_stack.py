"""The whole system on AWS: Kinesis -> KCL consumer on ECS Fargate -> DynamoDB + S3 (Glue
tables, an Athena workgroup), the scheduled trend Lambda alerting through SNS, and the alarms
and dashboard of deploy/monitoring.py.

Environment-agnostic (no account/region at synth, no lookups): ``cdk synth`` never contacts
AWS, and one template deploys to whichever account/region the CLI's credentials name. Every
knob is a context value (``cdk deploy -c name=value``): deploy/options.py lists them.

Cheap by default (deploy/README.md has the arithmetic): an on-demand stream, on-demand tables,
one 0.5 vCPU task in a public subnet (a public IPv4 address, about $3.60 a month, instead of a
NAT gateway, about $33 a month before traffic), free gateway endpoints for S3 and DynamoDB.
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
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from consumer import tables as consumer_tables
from consumer.lease_table import LEASE_OWNER_INDEX
from core.settings import Settings
from deploy.catalog import ATHENA_RESULTS_EXPIRATION, ATHENA_RESULTS_PREFIX, LakeCatalog
from deploy.lambda_bundle import LAMBDA_PYTHON_VERSION, PipBundling
from deploy.monitoring import Monitored, Monitoring
from deploy.options import StackOptions, read_options
from trend import tables as trend_tables

LAMBDA_RUNTIME: Final = lambda_.Runtime(
    f"python{LAMBDA_PYTHON_VERSION}", lambda_.RuntimeFamily.PYTHON, supports_inline_code=True
)

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
CONSUMER_DOCKERFILE: Final = "consumer/Dockerfile"
TREND_HANDLER: Final = "trend.handlers.handler"
# ECS sends SIGTERM, then SIGKILL after this; the daemon's graceful shutdown fits inside it.
CONSUMER_STOP_TIMEOUT_SECONDS: Final = 30
TREND_TIMEOUT_SECONDS: Final = 60
# The KCL's tables, named after the application (KCL creates them itself). KCL 3.5 keeps a new
# application's leases, worker metrics and leader lock all in the first (the lease table), but
# looks for the other two at start (the tables of KCL 3.0-3.4, which it would migrate), so the
# task role may touch all three names.
KCL_TABLE_SUFFIXES: Final = ("", "-CoordinatorState", "-WorkerMetricStats")
# The lease table's index (DynamoDBLeaseRefresher.LEASE_OWNER_TO_LEASE_KEY_INDEX_NAME), which
# `stockpipe consume` creates with the table (consumer/lease_table.py).
KCL_LEASE_OWNER_INDEX: Final = LEASE_OWNER_INDEX
# Consumer autoscaling: CPU target, and lag steps (iterator age, ms) on top of it.
CONSUMER_CPU_TARGET_PERCENT: Final = 60
SCALE_OUT_LAG_MS: Final = 60_000
SCALE_IN_LAG_MS: Final = 5_000
HTTPS: Final = 443

# The defaults of every setting, without reading this shell's environment (which may point at
# the local stack).
DEFAULTS: Final = Settings.model_construct()


def settings_env(**values: str) -> dict[str, str]:
    """Container/function environment from ``Settings`` field names: a name that is not a
    setting fails the synth instead of being silently ignored at run time."""
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"not fields of core.settings.Settings: {unknown}")
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


# Day counts (the values deploy/options.py accepts) -> the CDK's names for them.
LOG_RETENTION: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
}


class StockpipeStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.options: StackOptions = read_options(self.node.try_get_context)
        self.application_name = f"{self.stack_name}-consumer"

        self.stream = self._stream()
        self.rows_table, self.state_table = self._consumer_tables()
        self.cursor_table, self.alerts_table = self._trend_tables()
        self.access_logs, self.bucket = self._buckets()
        self.catalog = LakeCatalog(
            self,
            "Catalog",
            bucket=self.bucket,
            settings=DEFAULTS,
            scan_limit_gb=self.options.athena_scan_limit_gb,
        )
        self.topic_key = self._topic_key()
        self.topic = self._topic(
            "Alerts",
            "stockpipe market alerts",
            self.options.alert_emails,
            self.options.alert_phones,
        )
        self.oncall_topic = self._topic(
            "Oncall",
            "stockpipe operational alarms",
            self.options.oncall_emails,
            self.options.oncall_phones,
        )
        self.consumer_logs = self._log_group("ConsumerLogs")
        self.cluster, self.consumer_service = self._consumer()
        self.trend_failures, self.trend_function = self._trend()
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            watched=Monitored(
                stream=self.stream,
                consumer_logs=self.consumer_logs,
                service=self.consumer_service,
                cluster=self.cluster,
                trend=self.trend_function,
                trend_failures=self.trend_failures,
                tables={
                    "Rows": self.rows_table,
                    "State": self.state_table,
                    "TrendCursor": self.cursor_table,
                    "Alerts": self.alerts_table,
                },
                lag_alarm_seconds=self.options.lag_alarm_seconds,
            ),
            topic=self.oncall_topic,
        )
        self._outputs()

    # --- data --------------------------------------------------------------------------------

    def _stream(self) -> kinesis.Stream:
        # The AWS-managed key (aws/kinesis): KMS encryption at rest without a key to pay for
        # or a key policy to get wrong; producers need no kms:GenerateDataKey on it.
        common: dict[str, Any] = {
            "encryption": kinesis.StreamEncryption.MANAGED,
            "retention_period": Duration.hours(24),
        }
        if self.options.shards is None:
            return kinesis.Stream(self, "Ticks", stream_mode=kinesis.StreamMode.ON_DEMAND, **common)
        return kinesis.Stream(
            self,
            "Ticks",
            stream_mode=kinesis.StreamMode.PROVISIONED,
            shard_count=self.options.shards,
            **common,
        )

    def _table(
        self, construct_id: str, definition: dict[str, Any], *, pitr: bool = True, **extra: Any
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            **table_keys(definition),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=pitr
            ),
            removal_policy=RemovalPolicy.RETAIN,
            **extra,
        )

    def _consumer_tables(self) -> tuple[dynamodb.Table, dynamodb.Table]:
        definitions = _definitions_by_name(consumer_tables.table_definitions(DEFAULTS))
        # The rows expire after STOCKPIPE_ROW_TTL_DAYS and every one of them is also in the
        # lake; point-in-time recovery (priced per GB) is opt-in here. The state table holds
        # the rolling windows a replay resumes from: losing it would hurt, so it has PITR.
        rows = self._table(
            "RowsTable",
            definitions[DEFAULTS.rows_table],
            pitr=self.options.rows_table_pitr,
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

    def _buckets(self) -> tuple[s3.Bucket, s3.Bucket]:
        secure: dict[str, Any] = {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "enforce_ssl": True,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "removal_policy": RemovalPolicy.RETAIN,
        }
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            **secure,
            lifecycle_rules=[s3.LifecycleRule(id="expire", expiration=Duration.days(90))],
        )
        options = self.options
        lake = s3.Bucket(
            self,
            "Lake",
            **secure,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="lake/",
            lifecycle_rules=[
                # Ticks are read most in their first month; older days move to cheaper classes
                # that Athena still reads directly. S3 transitions only objects of 128 KiB or
                # more by default, so compacted days move and tiny flush files do not.
                s3.LifecycleRule(
                    id="ticks-to-cheaper-storage",
                    prefix=f"{DEFAULTS.ticks_prefix}/",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(options.lake_infrequent_access_days),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=Duration.days(options.lake_glacier_days),
                        ),
                    ],
                ),
                s3.LifecycleRule(
                    id="expire-dead-letters",
                    prefix=f"{DEFAULTS.dead_letter_prefix}/",
                    expiration=Duration.days(options.dead_letter_expiration_days),
                ),
                s3.LifecycleRule(
                    id="expire-athena-results",
                    prefix=f"{ATHENA_RESULTS_PREFIX}/",
                    expiration=ATHENA_RESULTS_EXPIRATION,
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
        )
        return access_logs, lake

    # --- alerting ----------------------------------------------------------------------------

    def _topic_key(self) -> kms.Key:
        """One customer-managed key for both topics: the AWS-managed SNS key cannot be used by
        CloudWatch alarms (its policy cannot be changed), and the alarms must reach on-call."""
        key = kms.Key(
            self,
            "TopicKey",
            description="stockpipe: SNS topics (market alerts, operational alarms)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        return key

    def _topic(
        self,
        construct_id: str,
        display_name: str,
        emails: tuple[str, ...],
        phones: tuple[str, ...],
    ) -> sns.Topic:
        topic = sns.Topic(
            self,
            construct_id,
            display_name=display_name,
            enforce_ssl=True,
            master_key=self.topic_key,
        )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        for phone in phones:
            topic.add_subscription(subscriptions.SmsSubscription(phone))
        return topic

    def _log_group(self, construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            retention=LOG_RETENTION[self.options.log_retention_days],
            removal_policy=RemovalPolicy.DESTROY,
        )

    # --- consumer ----------------------------------------------------------------------------

    def _consumer_image(self) -> ecs.ContainerImage:
        repository = self.options.consumer_image_repository
        if repository:
            return ecs.ContainerImage.from_ecr_repository(
                ecr.Repository.from_repository_name(self, "ConsumerRepository", repository),
                tag=self.options.consumer_image_tag,
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

    def _network(self) -> tuple[ec2.Vpc, ec2.SecurityGroup]:
        flow_logs = self._log_group("VpcFlowLogs")
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
            ],
            # Rejected traffic only: nothing may connect in, so a reject is worth a look,
            # while logging every accepted API call would cost more than the task.
            flow_logs={
                "rejected": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                )
            },
        )
        # Free gateway endpoints: S3 and DynamoDB traffic (most of it) stays on AWS's network.
        vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        # No ingress at all; egress only to HTTPS (the AWS APIs). DNS goes to the VPC
        # resolver, which security groups do not govern.
        group = ec2.SecurityGroup(
            self,
            "ConsumerSecurityGroup",
            vpc=vpc,
            description="stockpipe consumer: no ingress, HTTPS egress to AWS APIs",
            allow_all_outbound=False,
        )
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS), "AWS APIs over HTTPS")
        return vpc, group

    def _consumer(self) -> tuple[ecs.Cluster, ecs.FargateService]:
        options = self.options
        vpc, group = self._network()
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            # For the running-vs-desired task alarm (deploy/monitoring.py).
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        task = ecs.FargateTaskDefinition(
            self,
            "ConsumerTask",
            cpu=options.consumer_cpu,
            memory_limit_mib=options.consumer_memory,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        task.add_container(
            "consumer",
            image=self._consumer_image(),
            # Settings only; `stockpipe consume` writes the daemon's properties from them at
            # start (consumer/daemon.py), so no properties file is edited by hand.
            environment=self.consumer_environment(),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="consumer", log_group=self.consumer_logs),
            stop_timeout=Duration.seconds(CONSUMER_STOP_TIMEOUT_SECONDS),
            # tini as PID 1: forwards SIGTERM to `stockpipe consume` and reaps orphans.
            linux_parameters=ecs.LinuxParameters(self, "ConsumerLinux", init_process_enabled=True),
            readonly_root_filesystem=False,  # the daemon's properties and status files
        )
        self._grant_consumer(task.task_role)
        service = ecs.FargateService(
            self,
            "Consumer",
            cluster=cluster,
            task_definition=task,
            desired_count=options.consumer_count,
            assign_public_ip=True,  # public subnets, no NAT: egress to the AWS APIs only
            security_groups=[group],
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        self._autoscale(service)
        return cluster, service

    def _autoscale(self, service: ecs.FargateService) -> None:
        """Between the desired count (one task per ``shardsPerTask`` shards) and the ceiling:
        out on CPU or on lag, in when both are low. A KCL worker takes leases from the others
        as it joins, so scaling needs no coordination of ours."""
        options = self.options
        capacity = service.auto_scale_task_count(
            min_capacity=options.consumer_count, max_capacity=options.consumer_max_count
        )
        capacity.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=CONSUMER_CPU_TARGET_PERCENT,
            scale_in_cooldown=Duration.minutes(10),  # a lease hand-over is not free
            scale_out_cooldown=Duration.minutes(2),
        )
        capacity.scale_on_metric(
            "Lag",
            metric=self.stream.metric_get_records_iterator_age_milliseconds(
                statistic="Maximum", period=Duration.minutes(1)
            ),
            scaling_steps=[
                autoscaling.ScalingInterval(upper=SCALE_IN_LAG_MS, change=-1),
                autoscaling.ScalingInterval(lower=SCALE_OUT_LAG_MS, change=+1),
            ],
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.minutes(5),
            evaluation_periods=3,
        )

    def _grant_consumer(self, role: iam.IRole) -> None:
        self.stream.grant_read(role)
        self.rows_table.grant_read_write_data(role)
        self.state_table.grant_read_write_data(role)
        # The lake: write, and read/delete its own objects (a replay rewrites an object
        # keeping the rows it skipped, or deletes it; consumer/sinks/lake.py). ListBucket
        # makes a missing object a 404 (NoSuchKey) rather than a 403. Written out rather than
        # bucket.grant_read/grant_put/grant_delete, which would add s3:GetObject*, s3:List*,
        # s3:PutObjectRetention/LegalHold/Tagging and s3:Abort* that the consumer never calls.
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
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=item_actions,
                resources=[self.kcl_table_arn(suffix) for suffix in KCL_TABLE_SUFFIXES],
            )
        )
        # KCL 3 finds a worker's leases through this index of the lease table.
        lease_index = f"{self.kcl_table_arn('')}/index/{KCL_LEASE_OWNER_INDEX}"
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[lease_index])
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

    def _trend(self) -> tuple[sqs.Queue, lambda_.Function]:
        # Where a run that failed after its retries (or an event the scheduler could not
        # deliver) ends up, with its error: alarmed on (deploy/monitoring.py), kept 14 days.
        failures = sqs.Queue(
            self,
            "TrendFailures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # Its own role rather than the default one with AWSLambdaBasicExecutionRole (logs:* on
        # every log group): it writes only to its own log group.
        log_group = self._log_group("TrendLogs")
        role = iam.Role(self, "TrendRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.trend_role = role
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            "Trend",
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=TREND_HANDLER,
            code=lambda_.Code.from_asset(
                str(PROJECT_ROOT),
                bundling=BundlingOptions(
                    image=LAMBDA_RUNTIME.bundling_image,
                    local=PipBundling(),
                    command=["false"],  # never used: PipBundling bundles or raises
                ),
            ),
            timeout=Duration.seconds(TREND_TIMEOUT_SECONDS),
            memory_size=512,
            environment=self.trend_environment(),
            role=role,
            log_group=log_group,
            # One run at a time is the design (runs claim symbols, but two runs would only
            # contend); the rest of the account's concurrency is left alone.
            reserved_concurrent_executions=2,
            # The scheduler invokes asynchronously; a failed run is retried once, and the next
            # scheduled run picks up whatever is left anyway (cursors, alert ledger).
            retry_attempts=1,
            max_event_age=Duration.minutes(5),
            on_failure=destinations.SqsDestination(failures),
        )
        self.rows_table.grant_read_data(function)
        self.state_table.grant_read_data(function)
        self.cursor_table.grant_read_write_data(function)
        self.alerts_table.grant_read_write_data(function)
        self.topic.grant_publish(function)

        # The scheduler's own role, made here (not by the target) so it has a name to find.
        self.trend_schedule_role = iam.Role(
            self,
            "TrendScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        scheduler.Schedule(
            self,
            "TrendSchedule",
            description="stockpipe trend: crossovers and significant moves -> SNS",
            schedule=scheduler.ScheduleExpression.rate(
                Duration.minutes(self.options.trend_rate_minutes)
            ),
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
                dead_letter_queue=failures,
                role=self.trend_schedule_role,
            ),
        )
        return failures, function

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
            "athena_database": self.catalog.database_name,
            "athena_workgroup": self.catalog.workgroup.ref,
            "athena_output_location": self.catalog.results_location,
        }
        for field, value in fields.items():
            (variable,) = settings_env(**{field: value})
            output_id = "Env" + "".join(part.title() for part in field.split("_"))
            CfnOutput(self, output_id, value=value, description=variable)
        CfnOutput(
            self,
            "AnalystRoleArn",
            value=self.catalog.analyst_role.role_arn,
            description="Assume to query the lake in the Athena workgroup",
        )
        CfnOutput(
            self,
            "DashboardName",
            value=self.monitoring.dashboard.dashboard_name,
            description="CloudWatch dashboard",
        )
