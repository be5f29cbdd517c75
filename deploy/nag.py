"""cdk-nag's AwsSolutions rules over the stack, and every finding we accept, with the reason.

`cdk synth` runs the checks (deploy/app.py) and fails on any finding not acknowledged here;
tests/deploy runs the same. A suppression names the exact finding (``applies_to``) wherever
the rule reports one per permission, so a new wildcard elsewhere still fails the synth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

if TYPE_CHECKING:
    from deploy.stockpipe_stack import StockpipeStack


@dataclass(frozen=True)
class Acknowledged:
    rule: str
    reason: str
    applies_to: tuple[str, ...] = ()  # regexes over cdk-nag's finding ids

    def suppression(self) -> NagPackSuppression:
        return NagPackSuppression(
            id=self.rule,
            reason=self.reason,
            applies_to=[RegexAppliesTo(regex=f"/^{pattern}$/") for pattern in self.applies_to]
            or None,
        )


def _objects_under(*prefixes: str) -> tuple[str, ...]:
    return tuple(rf"Resource::<Lake[0-9A-F]{{8}}\.Arn>\/{prefix}\/\*" for prefix in prefixes)


PREFIX_OBJECTS: Final = (
    "Object ARNs under one prefix (PREFIX/*) are the narrowest S3 grant for objects whose "
    "names are made at run time (dt=DATE/shard=ID/SEQ.parquet)."
)


def acknowledgements(stack: StockpipeStack) -> dict[IConstruct, list[Acknowledged]]:
    """Construct -> the findings accepted on it (and on its children)."""
    from deploy.catalog import ATHENA_RESULTS_PREFIX
    from deploy.stockpipe_stack import DEFAULTS

    lake_prefixes = (DEFAULTS.ticks_prefix, DEFAULTS.dead_letter_prefix)
    task = stack.consumer_service.task_definition
    found: dict[IConstruct, list[Acknowledged]] = {
        stack.rows_table: [
            Acknowledged(
                "AwsSolutions-DDB3",
                "Rows expire after 30 days (TTL) and every row is also in the S3 lake; "
                "point-in-time recovery, priced per GB, is opt-in: -c rowsTablePitr=true.",
            )
        ],
        task: [
            Acknowledged(
                "AwsSolutions-ECS2",
                "The environment holds resource names only (STOCKPIPE_*); credentials come "
                "from the task role and nothing secret is configured.",
            ),
            Acknowledged("AwsSolutions-IAM5", PREFIX_OBJECTS, _objects_under(*lake_prefixes)),
            Acknowledged(
                "AwsSolutions-IAM5",
                "cloudwatch:PutMetricData has no resource-level permission; a condition limits "
                "it to the KCL's own namespace. ecr:GetAuthorizationToken (execution role) has "
                "none either.",
                (r"Resource::\*",),
            ),
        ],
        stack.catalog.analyst_role: [
            Acknowledged(
                "AwsSolutions-IAM5",
                PREFIX_OBJECTS + " Analysts read the two tables' prefixes and the results.",
                _objects_under(*lake_prefixes, ATHENA_RESULTS_PREFIX),
            )
        ],
        stack.trend_failures: [
            Acknowledged(
                "AwsSolutions-SQS3",
                "This queue is the dead-letter destination of the trend runs; a queue behind "
                "it would only hide the failures the alarm on this one reports.",
            )
        ],
        stack.trend_function: [
            Acknowledged(
                "AwsSolutions-L1",
                "Python 3.13: the newest runtime the bundle is tested on (its import test runs "
                "under CPython 3.13); the runtime moves when that test does.",
            ),
        ],
        stack.trend_role: [
            Acknowledged(
                "AwsSolutions-IAM5",
                "kms:GenerateDataKey* from topic.grant_publish, on the one topic key: SNS needs "
                "a data key to encrypt each published message.",
                (r"Action::kms:GenerateDataKey\*",),
            ),
        ],
        stack.trend_schedule_role: [
            Acknowledged(
                "AwsSolutions-IAM5",
                "The scheduler's role may invoke the trend function and its versions "
                "(FUNCTION_ARN:*), as the CDK's LambdaInvoke target grants; nothing else.",
                (r"Resource::<Trend[0-9A-F]{8}\.Arn>:\*",),
            )
        ],
    }
    return found


def acknowledge(stack: StockpipeStack) -> None:
    for construct, items in acknowledgements(stack).items():
        NagSuppressions.add_resource_suppressions(
            construct, [item.suppression() for item in items], apply_to_children=True
        )


def check(app: cdk.App, stack: StockpipeStack) -> None:
    """Run the AwsSolutions rules over the app at synth (findings fail the synth)."""
    acknowledge(stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
