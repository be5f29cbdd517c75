"""The synthesized CloudFormation: resources, keys from the tables' own definitions, the
container's and the function's STOCKPIPE_* environment, the schedule, and IAM scoped to the
resources."""

from __future__ import annotations

import importlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from consumer import tables as consumer_tables
from consumer.daemon import DEFAULT_KCL_JARS as KCL_JARS
from consumer.daemon import SHUTDOWN_GRACE_MILLIS
from core.contracts.schema import ROWS_TTL_ATTRIBUTE
from core.settings import Settings
from deploy.stockpipe_stack import KCL_LEASE_OWNER_INDEX
from tests.deploy.conftest import Synth
from trend import tables as trend_tables

DEFAULTS = Settings.model_construct()
PREFIX = "STOCKPIPE_"
# Actions AWS offers no resource-level permission for.
UNSCOPABLE_ACTIONS = {"cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def statements(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role (inline and AWS::IAM::Policy)."""
    found: list[dict[str, Any]] = []
    role = synth.resources[role_id]
    for policy in role["Properties"].get("Policies", []):
        found += policy["PolicyDocument"]["Statement"]
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if ref(role_id) in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_on(synth: Synth, role_id: str, resource: Any) -> set[str]:
    granted: set[str] = set()
    for statement in statements(synth, role_id):
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        if resource in resources:
            action = statement["Action"]
            granted |= {action} if isinstance(action, str) else set(action)
    return granted


def environment(container_or_function: dict[str, Any]) -> dict[str, Any]:
    if "Environment" in container_or_function and isinstance(
        container_or_function["Environment"], list
    ):
        return {e["Name"]: e["Value"] for e in container_or_function["Environment"]}
    return dict(container_or_function["Environment"]["Variables"])


def settings_field(name: str) -> str:
    assert name.startswith(PREFIX), name
    field = name.removeprefix(PREFIX).lower()
    assert field in Settings.model_fields, f"{name} is not a core.settings.Settings field"
    return field


@pytest.fixture(scope="module")
def ids(synth: Synth) -> dict[str, str]:
    """Logical ids of the stack's main resources."""
    return {
        "stream": synth.one("AWS::Kinesis::Stream", "Ticks")[0],
        "rows": synth.one("AWS::DynamoDB::Table", "RowsTable")[0],
        "state": synth.one("AWS::DynamoDB::Table", "StateTable")[0],
        "cursors": synth.one("AWS::DynamoDB::Table", "TrendCursorTable")[0],
        "alerts": synth.one("AWS::DynamoDB::Table", "AlertsTable")[0],
        "bucket": synth.one("AWS::S3::Bucket", "Lake")[0],
        "topic": synth.one("AWS::SNS::Topic", "Alerts")[0],
        "trend": synth.one("AWS::Lambda::Function", "Trend")[0],
        "trend_role": synth.one("AWS::IAM::Role", "TrendRole")[0],
        "task": synth.one("AWS::ECS::TaskDefinition", "ConsumerTask")[0],
    }


@pytest.fixture(scope="module")
def container(synth: Synth, ids: dict[str, str]) -> dict[str, Any]:
    (definition,) = synth.resources[ids["task"]]["Properties"]["ContainerDefinitions"]
    return dict(definition)


# --- stream --------------------------------------------------------------------------------


def test_stream_is_encrypted_and_on_demand_by_default(synth: Synth) -> None:
    _, stream = synth.one("AWS::Kinesis::Stream", "Ticks")
    props = stream["Properties"]
    assert props["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in props
    assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}


def test_shards_context_makes_a_provisioned_stream(synth_custom: Synth) -> None:
    _, stream = synth_custom.one("AWS::Kinesis::Stream", "Ticks")
    assert stream["Properties"]["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert stream["Properties"]["ShardCount"] == 3


# --- tables --------------------------------------------------------------------------------

TABLES = {
    # construct id: (the CreateTable definition the local stack uses, TTL attribute)
    "RowsTable": (
        consumer_tables.table_definitions(DEFAULTS)[0],
        ROWS_TTL_ATTRIBUTE,
    ),
    "StateTable": (consumer_tables.table_definitions(DEFAULTS)[1], None),
    "TrendCursorTable": (trend_tables.table_definitions(DEFAULTS)[0], None),
    "AlertsTable": (
        trend_tables.table_definitions(DEFAULTS)[1],
        trend_tables.ALERTS_TTL_ATTRIBUTE,
    ),
}


def test_the_definitions_are_the_ones_the_local_stack_creates() -> None:
    names = [definition["TableName"] for definition, _ in TABLES.values()]
    assert names == [
        DEFAULTS.rows_table,
        DEFAULTS.state_table,
        DEFAULTS.cursor_table,
        DEFAULTS.alerts_table,
    ]
    # The rows table is keyed symbol + ts, as docs/design.md says.
    assert [k["AttributeName"] for k in TABLES["RowsTable"][0]["KeySchema"]] == ["symbol", "ts"]


@pytest.mark.parametrize("construct_id", sorted(TABLES))
def test_table_keys_ttl_and_protection(synth: Synth, construct_id: str) -> None:
    definition, ttl = TABLES[construct_id]
    _, table = synth.one("AWS::DynamoDB::Table", construct_id)
    props = table["Properties"]
    assert props["KeySchema"] == definition["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(
        definition["AttributeDefinitions"], key=str
    )
    assert props["BillingMode"] == definition["BillingMode"] == "PAY_PER_REQUEST"
    assert "TableName" not in props  # named by CloudFormation, passed on in the environment
    # The rows expire and are all in the lake too: PITR there is opt-in (rowsTablePitr).
    pitr = construct_id != "RowsTable"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": pitr}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    if ttl is None:
        assert "TimeToLiveSpecification" not in props
    else:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}


def test_rows_table_pitr_from_context(synth_custom: Synth) -> None:
    _, table = synth_custom.one("AWS::DynamoDB::Table", "RowsTable")
    spec = table["Properties"]["PointInTimeRecoverySpecification"]
    assert spec == {"PointInTimeRecoveryEnabled": True}


def test_rows_ttl_is_the_one_the_local_stack_enables() -> None:
    assert consumer_tables.TTL_SPECIFICATION["AttributeName"] == ROWS_TTL_ATTRIBUTE


# --- bucket --------------------------------------------------------------------------------


def test_bucket_is_private_encrypted_and_expires_dead_letters(synth: Synth) -> None:
    bucket_id, bucket = synth.one("AWS::S3::Bucket", "Lake")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
    dead_letters = rules["expire-dead-letters"]
    assert dead_letters["Prefix"] == f"{DEFAULTS.dead_letter_prefix}/"
    assert dead_letters["ExpirationInDays"] == 90
    assert dead_letters["Status"] == "Enabled"
    assert bucket["DeletionPolicy"] == "Retain"
    # TLS only.
    (policy,) = [
        p
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == ref(bucket_id)
    ]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dead_letter_expiry_from_context(synth_custom: Synth) -> None:
    _, bucket = synth_custom.one("AWS::S3::Bucket", "Lake")
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-dead-letters"]["ExpirationInDays"] == 30


# --- consumer service ----------------------------------------------------------------------


def test_container_environment_names_are_settings_fields(
    container: dict[str, Any], ids: dict[str, str], synth: Synth
) -> None:
    env = environment(container)
    fields = {settings_field(name): value for name, value in env.items()}
    assert fields["region"] == {"Ref": "AWS::Region"}
    assert fields["stream_name"] == ref(ids["stream"])
    assert fields["rows_table"] == ref(ids["rows"])
    assert fields["state_table"] == ref(ids["state"])
    assert fields["bucket"] == ref(ids["bucket"])
    assert fields["application_name"] == synth.stack.application_name
    # On AWS: the SDKs' regional endpoints and the task role, never local endpoints or keys.
    for local_only in (
        "endpoint_url",
        "kinesis_endpoint_url",
        "aws_access_key_id",
        "aws_secret_access_key",
        "status_dir",
    ):
        assert local_only not in fields
    # The literal values are valid settings.
    literal = {k: v for k, v in fields.items() if isinstance(v, str)}
    Settings.model_validate(literal)


def test_container_stops_gracefully_and_logs_to_cloudwatch(
    container: dict[str, Any], synth: Synth
) -> None:
    assert container["StopTimeout"] == 30
    assert container["StopTimeout"] * 1000 > SHUTDOWN_GRACE_MILLIS
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    assert container["Essential"] is True
    log = container["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    group_id = log["Options"]["awslogs-group"]["Ref"]
    assert synth.resources[group_id]["Properties"]["RetentionInDays"] == 30
    assert "Secrets" not in container


def test_image_is_the_consumer_dockerfile_staged_without_docker(
    container: dict[str, Any], synth: Synth
) -> None:
    image = json.dumps(container["Image"])
    assert "container-assets" in image
    manifest = json.loads((Path(synth.assembly.directory) / "Stockpipe.assets.json").read_text())
    (asset,) = manifest["dockerImages"].values()
    source = asset["source"]
    assert source["dockerFile"] == "consumer/Dockerfile"
    assert source["platform"] == "linux/amd64"
    staged = Path(synth.assembly.directory) / source["directory"]
    files = {str(p.relative_to(staged)) for p in Path(staged).rglob("*") if p.is_file()}
    assert {"consumer/Dockerfile", "pyproject.toml", "README.md", "Makefile"} <= files
    assert "consumer/daemon.py" in files and "trend/handlers.py" in files
    # /.dockerignore keeps everything else out of the context (and of the asset's hash).
    tops = {f.split("/")[0] for f in files}
    assert tops <= {
        ".dockerignore",
        "pyproject.toml",
        "README.md",
        "Makefile",
        "stockpipe",
        "producer",
        "consumer",
        "trend",
        "core",
        "lake",
        "requirements",
    }, tops
    assert not any("__pycache__" in f for f in files)


def test_image_from_an_ecr_repository_when_given(synth_custom: Synth) -> None:
    _, task = synth_custom.one("AWS::ECS::TaskDefinition", "ConsumerTask")
    (container,) = task["Properties"]["ContainerDefinitions"]
    image = json.dumps(container["Image"])
    assert "/stockpipe-consumer:v1" in image
    assert "container-assets" not in image
    assert task["Properties"]["Cpu"] == "2048"
    assert task["Properties"]["Memory"] == "4096"


def test_fargate_service(synth: Synth, synth_custom: Synth) -> None:
    _, service = synth.one("AWS::ECS::Service", "ConsumerService")
    props = service["Properties"]
    assert props["LaunchType"] == "FARGATE"
    assert props["DesiredCount"] == 1
    assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    network = props["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "ENABLED"
    _, custom = synth_custom.one("AWS::ECS::Service", "ConsumerService")
    assert custom["Properties"]["DesiredCount"] == 2
    # No ingress at all: the consumer only calls out.
    for group in synth.of_type("AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]


def test_consumer_grants(synth: Synth, ids: dict[str, str]) -> None:
    role = synth.resources[ids["task"]]["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    stream = actions_on(synth, role, arn(ids["stream"]))
    assert {"kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"} <= stream
    assert {"kinesis:DescribeStreamSummary", "kinesis:DescribeStream"} <= stream
    assert not {a for a in stream if a.startswith("kinesis:Put")}
    for table in ("rows", "state"):
        granted = actions_on(synth, role, arn(ids[table]))
        assert {"dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem"} <= granted
        assert {"dynamodb:BatchGetItem"} <= granted
    for table in ("cursors", "alerts"):
        assert not actions_on(synth, role, arn(ids[table]))
    bucket_arn = arn(ids["bucket"])
    for prefix in (DEFAULTS.ticks_prefix, DEFAULTS.dead_letter_prefix):
        objects = {"Fn::Join": ["", [bucket_arn, f"/{prefix}/*"]]}
        assert actions_on(synth, role, objects) == {
            "s3:PutObject",
            "s3:GetObject",
            "s3:DeleteObject",
        }
    assert actions_on(synth, role, bucket_arn) == {"s3:ListBucket"}
    assert not actions_on(synth, role, ref(ids["topic"]))


def test_kcl_tables_and_metrics_grants(synth: Synth, ids: dict[str, str]) -> None:
    role = synth.resources[ids["task"]]["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    app = synth.stack.application_name
    rendered = {
        json.dumps(s["Resource"]): s for s in statements(synth, role) if "dynamodb" in str(s)
    }
    kcl_arns = []
    for statement in statements(synth, role):
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else []:
            text = json.dumps(resource)
            if f":table/{app}" in text:
                kcl_arns.append((text, statement))
    suffixes = sorted(text.split(f":table/{app}")[1].split('"')[0] for text, _ in kcl_arns)
    assert suffixes == ["", "-CoordinatorState", "-WorkerMetricStats"]
    for _, statement in kcl_arns:
        assert "dynamodb:CreateTable" in statement["Action"]
        assert "dynamodb:UpdateItem" in statement["Action"]
    index = [s for text, s in rendered.items() if f":table/{app}/index/" in text]
    assert [s["Action"] for s in index] == ["dynamodb:Query"]
    (index_arn,) = [text for text in rendered if f":table/{app}/index/" in text]
    assert index_arn.split("/index/")[1].split('"')[0] == KCL_LEASE_OWNER_INDEX
    (metrics,) = [s for s in statements(synth, role) if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Resource"] == "*"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": app}}


def test_the_lease_index_is_the_one_the_kcl_queries() -> None:
    """The index name granted is a constant of the KCL jar the daemon runs (its class file's
    constant pool), not only a string of ours."""
    jars = sorted(KCL_JARS.glob("amazon-kinesis-client-3*.jar"))
    assert jars, f"no KCL jar in {KCL_JARS}: run make setup"
    with zipfile.ZipFile(jars[-1]) as jar:
        refresher = jar.read("software/amazon/kinesis/leases/dynamodb/DynamoDBLeaseRefresher.class")
    assert KCL_LEASE_OWNER_INDEX.encode() in refresher


# --- trend function and schedule -----------------------------------------------------------


def test_trend_function(synth: Synth, ids: dict[str, str]) -> None:
    props = synth.resources[ids["trend"]]["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Handler"] == "trend.handlers.handler"
    module, _, name = props["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    # The claim lease must outlive a run (core/settings.py: alert_lease_seconds).
    assert props["Timeout"] < DEFAULTS.alert_lease_seconds
    fields = {settings_field(k): v for k, v in environment(props).items()}
    assert fields == {
        "region": {"Ref": "AWS::Region"},
        "rows_table": ref(ids["rows"]),
        "state_table": ref(ids["state"]),
        "cursor_table": ref(ids["cursors"]),
        "alerts_table": ref(ids["alerts"]),
        "alerts_topic_arn": ref(ids["topic"]),
    }
    assert props["Role"] == arn(ids["trend_role"])
    assert "ManagedPolicyArns" not in synth.resources[ids["trend_role"]]["Properties"]


def test_trend_grants(synth: Synth, ids: dict[str, str]) -> None:
    role = ids["trend_role"]
    for table in ("rows", "state"):
        granted = actions_on(synth, role, arn(ids[table]))
        assert {"dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem"} <= granted
        assert not {a for a in granted if "Put" in a or "Write" in a or "Update" in a}
    for table in ("cursors", "alerts"):
        granted = actions_on(synth, role, arn(ids[table]))
        assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"} <= granted
    assert actions_on(synth, role, ref(ids["topic"])) == {"sns:Publish"}
    assert not actions_on(synth, role, arn(ids["stream"]))


def test_schedule_runs_the_function_every_minute(synth: Synth, ids: dict[str, str]) -> None:
    (schedule,) = synth.of_type("AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(1 minute)"
    assert props["State"] == "ENABLED"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = props["Target"]
    assert target["Arn"] == arn(ids["trend"])
    event = json.loads(target["Input"])
    assert event["detail-type"] == "Scheduled Event"
    assert event["time"] == "<aws.scheduler.scheduled-time>"
    # The scheduler's role may invoke this function, and send what it cannot deliver to the
    # failures queue, and nothing else.
    role = target["RoleArn"]["Fn::GetAtt"][0]
    granted = {
        (s["Action"], json.dumps(s["Resource"], sort_keys=True)) for s in statements(synth, role)
    }
    failures = synth.one("AWS::SQS::Queue", "TrendFailures")[0]
    assert {action for action, _ in granted} == {"lambda:InvokeFunction", "sqs:SendMessage"}
    for action, resource in granted:
        wanted = arn(ids["trend"]) if action.startswith("lambda") else arn(failures)
        assert json.dumps(wanted, sort_keys=True) in resource
    assert target["DeadLetterConfig"] == {"Arn": arn(failures)}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_schedule_rate_from_context(synth_custom: Synth) -> None:
    (schedule,) = synth_custom.of_type("AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"


def test_handler_accepts_the_scheduled_input(synth: Synth) -> None:
    """The input is an EventBridge event for the handler's @event_source(EventBridgeEvent)."""
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

    (schedule,) = synth.of_type("AWS::Scheduler::Schedule").values()
    event = EventBridgeEvent(json.loads(schedule["Properties"]["Target"]["Input"]))
    assert event.detail_type == "Scheduled Event"
    assert event.get("time") == "<aws.scheduler.scheduled-time>"


# --- alerts topic --------------------------------------------------------------------------


def test_no_subscriptions_by_default(synth: Synth) -> None:
    assert not synth.of_type("AWS::SNS::Subscription")


def test_subscriptions_from_context(synth_custom: Synth) -> None:
    topic_id, _ = synth_custom.one("AWS::SNS::Topic", "Alerts")
    subscriptions = {
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
        for s in synth_custom.of_type("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == ref(topic_id)
    }
    assert subscriptions == {
        ("email", "oncall@example.com"),
        ("email", "second@example.com"),
        ("sms", "+15555550100"),
    }


# --- IAM and environment-agnostic synth ----------------------------------------------------


@pytest.mark.parametrize("which", ["synth", "synth_custom"])
def test_no_wildcard_resources_or_actions(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    documents = [
        p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::IAM::Policy").values()
    ]
    for role in synth.of_type("AWS::IAM::Role").values():
        documents += [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    assert documents
    for document in documents:
        for statement in document["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            assert all(a != "*" and not a.endswith(":*") for a in actions), statement
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            if "*" in resources:
                assert set(actions) <= UNSCOPABLE_ACTIONS, statement


def test_our_roles_have_no_managed_policies(synth: Synth, ids: dict[str, str]) -> None:
    task = synth.resources[ids["task"]]["Properties"]
    for role_ref in (task["TaskRoleArn"], task["ExecutionRoleArn"], arn(ids["trend_role"])):
        role = synth.resources[role_ref["Fn::GetAtt"][0]]
        assert "ManagedPolicyArns" not in role["Properties"]


def test_synth_is_environment_agnostic_and_needs_no_lookups(synth: Synth) -> None:
    import aws_cdk as cdk

    assert cdk.Token.is_unresolved(synth.stack.account)
    assert cdk.Token.is_unresolved(synth.stack.region)
    manifest = json.loads((Path(synth.assembly.directory) / "manifest.json").read_text())
    assert not manifest.get("missing")  # no context lookup was requested


def test_outputs_name_their_settings(synth: Synth) -> None:
    described = {o["Description"] for k, o in synth.outputs.items() if k.startswith("Env")}
    assert len(described) == len([k for k in synth.outputs if k.startswith("Env")])
    for name in described:
        settings_field(name)
    assert {f"{PREFIX}STREAM_NAME", f"{PREFIX}BUCKET", f"{PREFIX}REGION"} <= described
