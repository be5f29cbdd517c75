"""deploy/monitoring.py and the alerting around it, in the synthesized template: every alarm
on-call needs exists, pages the on-call topic, and watches the right resource; the consumer's
metric filters read fields the real consumer logs; the dashboard shows the signals; the topics
are encrypted with a key CloudWatch may use; failed alert runs land in a queue; the service
scales between one task per N shards and its ceiling."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumer.daemon_logs import to_json
from core.contracts.tick import Tick
from core.logs import JsonFormatter
from tests.consumer.pipeline_support import expected_outputs, input_file
from tests.consumer.test_sink_retry import TRANSIENT, records, run
from tests.deploy.conftest import Synth
from tests.deploy.test_stack import arn, ref

RECORDED = Path(__file__).resolve().parents[1] / "consumer" / "data" / "daemon_output.log"


def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """Alarm construct id (under Monitoring) -> properties."""
    found = {}
    for logical_id, resource in synth.of_type("AWS::CloudWatch::Alarm").items():
        if logical_id.startswith("Monitoring"):
            found[logical_id.removeprefix("Monitoring")[:-8]] = resource["Properties"]
    return found


def metrics_of(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The metric stats an alarm reads (a single metric, or the inputs of its math)."""
    if "MetricName" in alarm:
        yield {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
               "Dimensions": alarm.get("Dimensions", [])}  # fmt: skip
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]


EXPECTED_ALARMS = {
    "ConsumerLag",
    "ConsumerTasksMissing",
    "DeadLetterRate",
    "ConsumerSinksRefused",
    "StreamWriteThrottled",
    "TrendErrors",
    "TrendThrottles",
    "TrendFailuresQueued",
    "TrendOutOfTime",
    "RowsThrottled",
    "StateThrottled",
    "TrendCursorThrottled",
    "AlertsThrottled",
}


def test_every_alarm_pages_the_oncall_topic_with_a_readable_description(synth: Synth) -> None:
    found = alarms(synth)
    assert set(found) == EXPECTED_ALARMS
    oncall, _ = synth.one("AWS::SNS::Topic", "Oncall")
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [ref(oncall)], name
        assert alarm["OKActions"] == [ref(oncall)], name
        assert len(alarm["AlarmDescription"]) > 40, name  # says what to do, not only what


def test_lag_alarm_watches_this_stream_and_treats_silence_as_broken(
    synth: Synth, synth_custom: Synth
) -> None:
    stream, _ = synth.one("AWS::Kinesis::Stream", "Ticks")
    lag = alarms(synth)["ConsumerLag"]
    assert lag["Namespace"] == "AWS/Kinesis"
    assert lag["MetricName"] == "GetRecords.IteratorAgeMilliseconds"
    assert lag["Dimensions"] == [{"Name": "StreamName", "Value": ref(stream)}]
    assert lag["Statistic"] == "Maximum"
    assert lag["Threshold"] == 120_000
    assert lag["TreatMissingData"] == "breaching"  # nobody polling is as bad as lagging
    assert alarms(synth_custom)["ConsumerLag"]["Threshold"] == 300_000


def test_task_alarm_compares_running_with_desired_for_this_service(synth: Synth) -> None:
    alarm = alarms(synth)["ConsumerTasksMissing"]
    (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["Expression"] == "desired - running"
    names = {m["MetricName"] for m in metrics_of(alarm)}
    assert names == {"DesiredTaskCount", "RunningTaskCount"}
    cluster, _ = synth.one("AWS::ECS::Cluster", "Cluster")
    service, _ = synth.one("AWS::ECS::Service", "ConsumerService")
    for metric in metrics_of(alarm):
        assert metric["Namespace"] == "ECS/ContainerInsights"
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions == {
            "ClusterName": ref(cluster),
            "ServiceName": {"Fn::GetAtt": [service, "Name"]},
        }
    # ...which needs Container Insights on the cluster.
    settings = synth.resources[cluster]["Properties"]["ClusterSettings"]
    assert {"Name": "containerInsights", "Value": "enabled"} in settings


def test_trend_and_table_alarms_watch_their_resources(synth: Synth) -> None:
    found = alarms(synth)
    trend, _ = synth.one("AWS::Lambda::Function", "Trend")
    for name, metric in (("TrendErrors", "Errors"), ("TrendThrottles", "Throttles")):
        assert found[name]["MetricName"] == metric
        assert found[name]["Dimensions"] == [{"Name": "FunctionName", "Value": ref(trend)}]
    queue, _ = synth.one("AWS::SQS::Queue", "TrendFailures")
    assert found["TrendFailuresQueued"]["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
    ]
    for label, construct_id in (
        ("Rows", "RowsTable"),
        ("State", "StateTable"),
        ("TrendCursor", "TrendCursorTable"),
        ("Alerts", "AlertsTable"),
    ):
        table, _ = synth.one("AWS::DynamoDB::Table", construct_id)
        stats = list(metrics_of(found[f"{label}Throttled"]))
        assert {m["MetricName"] for m in stats} == {"ReadThrottleEvents", "WriteThrottleEvents"}
        for metric in stats:
            assert metric["Dimensions"] == [{"Name": "TableName", "Value": ref(table)}]


def test_out_of_time_alarm_watches_the_metric_the_handler_emits(synth: Synth) -> None:
    """The alarm reads RunOutOfTime under the trend Lambda's Powertools namespace and service
    dimension, and the handler really emits it: 1 for a run the budget cut short."""
    from trend.handlers import SERVICE, _record, metrics
    from trend.runner import RunReport

    alarm = alarms(synth)["TrendOutOfTime"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (metrics.namespace, "RunOutOfTime")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert alarm["Statistic"] == "Sum" and alarm["Period"] == 300
    assert alarm["Threshold"] == 1 and alarm["EvaluationPeriods"] == 3
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # no run: TrendErrors' business
    for phrase in ("Nothing is lost", "late", "run incomplete: out of time", "timeout"):
        assert phrase in alarm["AlarmDescription"], phrase
    metrics.clear_metrics()
    try:
        _record(RunReport(out_of_time=True, symbols_total=9, symbols_remaining=4))
        emitted = metrics.serialize_metric_set()
    finally:
        metrics.clear_metrics()
    assert emitted["RunOutOfTime"] == [1.0] and emitted["SymbolsRemaining"] == [4.0]
    assert emitted["service"] == SERVICE


# --- the consumer's metric filters against what the real consumer logs -----------------------

FILTER_RE = re.compile(r'^\{ \$\.(?P<field>\w+) = "(?P<value>[^"]*)" \}$')


def metric_filters(synth: Synth) -> dict[str, tuple[str, str]]:
    """Metric name -> (filter pattern, value selector)."""
    found = {}
    for resource in synth.of_type("AWS::Logs::MetricFilter").values():
        props = resource["Properties"]
        (transformation,) = props["MetricTransformations"]
        found[transformation["MetricName"]] = (
            props["FilterPattern"],
            transformation["MetricValue"],
        )
    return found


def matching(pattern: str, lines: list[str]) -> list[dict[str, Any]]:
    """CloudWatch's JSON filter for the one shape used here: ``{ $.field = "value" }``, over
    whole log events (a line that is not a JSON object never matches)."""
    match = FILTER_RE.match(pattern)
    assert match, f"a filter shape this test does not evaluate: {pattern}"
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get(match["field"]) == match["value"]:
            events.append(event)
    return events


@pytest.fixture(scope="module")
def consumer_log_events() -> list[str]:
    """The consumer's log events as the container ships them (daemon output as
    `stockpipe consume` writes it): recorded from the real daemon over pipeline_support's
    input file."""
    converted = (to_json(line) for line in RECORDED.read_text().splitlines())
    return [line for line in converted if line is not None]


def test_filters_sum_to_what_the_consumer_did(
    synth: Synth, consumer_log_events: list[str], tmp_path: Path
) -> None:
    """Summed over the recorded run, the filters give the input's record count and the
    dead letters and anomalies `stockpipe process` (the file pipeline) finds in it."""
    filters = metric_filters(synth)
    assert set(filters) == {
        "ConsumerRecords",
        "ConsumerDeadLetters",
        "ConsumerAnomalies",
        "ConsumerStepRetries",
    }
    del filters["ConsumerStepRetries"]  # the recorded run had no fault (next test)
    ticks = input_file(tmp_path / "ticks.jsonl")
    rows, dead = expected_outputs(ticks, tmp_path)
    expected = {
        "ConsumerRecords": len(ticks.read_text().splitlines()),
        "ConsumerDeadLetters": len(dead),
        "ConsumerAnomalies": sum(1 for row in rows if row["anomaly"]),
    }
    for name, (pattern, selector) in filters.items():
        events = matching(pattern, consumer_log_events)
        assert events, f"{name}: no consumer log event matches {pattern}"
        field = selector.removeprefix("$.")
        assert sum(int(event[field]) for event in events) == expected[name], name


def test_step_retry_filter_counts_each_retry_the_consumer_logs(
    synth: Synth, real_ticks: list[Tick], caplog: pytest.LogCaptureFixture
) -> None:
    """Three commit steps fail once each (a processor over in-memory sinks); the consumer's
    log lines, formatted as the container ships them, match the filter three times."""
    errors = [TRANSIENT[k]() for k in ("s3-slowdown", "ddb-throttled", "reset")]
    caplog.set_level(logging.WARNING, logger="consumer.processor")
    run(records(real_ticks), "lake.write_batch", errors)
    lines = [JsonFormatter().format(record) for record in caplog.records]
    pattern, value = metric_filters(synth)["ConsumerStepRetries"]
    assert value == "1"
    assert len(matching(pattern, lines)) == len(errors)
    alarm = alarms(synth)["ConsumerSinksRefused"]
    assert alarm["MetricName"] == "ConsumerStepRetries" and alarm["Period"] == 300
    assert alarm["Statistic"] == "Sum" and alarm["EvaluationPeriods"] == 3


def test_dead_letter_alarm_is_the_fraction_of_records(synth: Synth) -> None:
    alarm = alarms(synth)["DeadLetterRate"]
    (expression,) = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
    assert expression == "IF(records >= 100, dead / records, 0)"
    names = {m["MetricName"] for m in metrics_of(alarm)}
    assert names == {"ConsumerDeadLetters", "ConsumerRecords"}
    assert alarm["Threshold"] == 0.01


# --- dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_ingest_lag_anomalies_alerts_and_errors(synth: Synth) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for shown in (
        "IncomingRecords",
        "GetRecords.IteratorAgeMilliseconds",
        "ConsumerRecords",
        "ConsumerAnomalies",
        "CrossingAlertsSent",
        "AnomalyAlertsSent",
        "SymbolsEvaluated",
        "SymbolsRemaining",
        "RunOutOfTime",
        "ConsumerDeadLetters",
        "ConsumerStepRetries",
        "Errors",
        "RunningTaskCount",
    ):
        assert shown in body, shown
    # The alert counts are the trend Lambda's own Powertools metrics.
    from trend.handlers import SERVICE, metrics

    assert SERVICE == "stockpipe-trend" and '\\"service\\",\\"' + SERVICE in body
    assert metrics.namespace == "stockpipe"


# --- topics, failures queue --------------------------------------------------------------------


def test_topics_are_encrypted_with_a_rotating_key_cloudwatch_may_use(synth: Synth) -> None:
    key_id, key = synth.one("AWS::KMS::Key", "TopicKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    for construct_id in ("Alerts", "Oncall"):
        _, topic = synth.one("AWS::SNS::Topic", construct_id)
        assert topic["Properties"]["KmsMasterKeyId"] == arn(key_id)
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [
        s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    # TLS only on both topics.
    for policy in synth.of_type("AWS::SNS::TopicPolicy").values():
        (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }


def test_oncall_subscriptions_from_context(synth_custom: Synth) -> None:
    topic, _ = synth_custom.one("AWS::SNS::Topic", "Oncall")
    subscribed = {
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
        for s in synth_custom.of_type("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == ref(topic)
    }
    assert subscribed == {("email", "pager@example.com"), ("sms", "+15555550199")}


def test_failed_runs_land_in_an_encrypted_queue(synth: Synth) -> None:
    queue_id, queue = synth.one("AWS::SQS::Queue", "TrendFailures")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    (config,) = synth.of_type("AWS::Lambda::EventInvokeConfig").values()
    trend, _ = synth.one("AWS::Lambda::Function", "Trend")
    assert config["Properties"]["FunctionName"] == ref(trend)
    assert config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == arn(queue_id)
    assert config["Properties"]["MaximumRetryAttempts"] == 1
    role = synth.resources[trend]["Properties"]["Role"]["Fn::GetAtt"][0]
    from tests.deploy.test_stack import actions_on

    assert "sqs:SendMessage" in actions_on(synth, role, arn(queue_id))


# --- autoscaling and network -----------------------------------------------------------------


def test_consumer_scales_between_its_count_and_ceiling_on_cpu_and_lag(
    synth: Synth, synth_custom: Synth
) -> None:
    (target,) = synth.of_type("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (1, 4)
    (custom,) = synth_custom.of_type("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert (custom["Properties"]["MinCapacity"], custom["Properties"]["MaxCapacity"]) == (2, 3)
    policies = [
        p["Properties"]
        for p in synth.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    (cpu,) = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"]
    config = cpu["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "ECSServiceAverageCPUUtilization"
    )
    assert config["TargetValue"] == 60
    steps = sorted(
        step["ScalingAdjustment"]
        for p in policies
        if p["PolicyType"] == "StepScaling"
        for step in p["StepScalingPolicyConfiguration"]["StepAdjustments"]
    )
    assert steps == [-1, 1]
    # The step alarms read the stream's iterator age (out above 60 s, in below 5 s).
    scaling_alarms = [
        a["Properties"]
        for k, a in synth.of_type("AWS::CloudWatch::Alarm").items()
        if k.startswith("ConsumerTaskCountTargetLag")
    ]
    assert sorted(a["Threshold"] for a in scaling_alarms) == [5_000, 60_000]
    assert {a["MetricName"] for a in scaling_alarms} == {"GetRecords.IteratorAgeMilliseconds"}


def test_network_is_cheap_and_closed(synth: Synth) -> None:
    assert not synth.of_type("AWS::EC2::NatGateway")
    endpoints = synth.of_type("AWS::EC2::VPCEndpoint").values()
    services = {json.dumps(e["Properties"]["ServiceName"]) for e in endpoints}
    assert any(".s3" in s for s in services) and any(".dynamodb" in s for s in services)
    assert {e["Properties"]["VpcEndpointType"] for e in endpoints} == {"Gateway"}
    (flow_log,) = synth.of_type("AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "REJECT"
    group_id, group = synth.one("AWS::EC2::SecurityGroup", "ConsumerSecurityGroup")
    assert "SecurityGroupIngress" not in group["Properties"]
    assert group["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "AWS APIs over HTTPS",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    _, service = synth.one("AWS::ECS::Service", "ConsumerService")
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["SecurityGroups"] == [{"Fn::GetAtt": [group_id, "GroupId"]}]
