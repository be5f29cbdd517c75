"""Synthesizes the stack in-process (aws_cdk.assertions), once per set of context values.

No AWS and no network: the stack is environment-agnostic (no lookups), the consumer image is
only staged (its build is `cdk deploy`'s job), and the Lambda's pip bundling is skipped
(``aws:cdk:bundling-stacks``), as `cdk synth --exclusively` would.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii warns loudly on stderr about this machine's Node 20; the warning is not a test result.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Synth:
    template: Any  # aws_cdk.assertions.Template
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    assembly: Any  # aws_cdk.cx_api.CloudAssembly
    stack: Any  # deploy.stockpipe_stack.StockpipeStack

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def one(self, cfn_type: str, construct_id: str) -> tuple[str, dict[str, Any]]:
        """The resource of this type whose logical id is the construct id plus CDK's hash."""
        found = [
            (k, r)
            for k, r in self.of_type(cfn_type).items()
            if k.startswith(construct_id)
            and k[len(construct_id) :].isalnum()
            and len(k) - len(construct_id) == 8
        ]
        assert len(found) == 1, (cfn_type, construct_id, sorted(self.of_type(cfn_type)))
        return found[0]


def synthesize(outdir: Path, **context: Any) -> Synth:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from deploy.app import build

    values = json.loads((ROOT / "deploy/cdk.json").read_text())["context"]
    values |= {"aws:cdk:bundling-stacks": [], "stackName": "Stockpipe"} | context
    app = cdk.App(context=values, outdir=str(outdir))
    stack = build(app)  # as `cdk synth` does: cdk-nag's checks included
    assembly = app.synth()
    body = assembly.get_stack_by_name("Stockpipe").template
    return Synth(
        template=Template.from_json(body),
        resources=body["Resources"],
        outputs=body.get("Outputs", {}),
        assembly=assembly,
        stack=stack,
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with the defaults of deploy/cdk.json."""
    return synthesize(tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def synth_custom(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with every context parameter given."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-custom"),
        shards="3",
        consumerCount="2",
        consumerCpu="2048",
        consumerMemory="4096",
        consumerImageRepository="stockpipe-consumer",
        consumerImageTag="v1",
        alertEmails="oncall@example.com, second@example.com",
        alertPhones="+15555550100",
        logRetentionDays="90",
        deadLetterExpirationDays="30",
        rowsTablePitr="true",
        oncallEmails="pager@example.com",
        oncallPhones="+15555550199",
        trendRateMinutes="5",
        lagAlarmSeconds="300",
        lakeInfrequentAccessDays="60",
        lakeGlacierDays="365",
        athenaScanLimitGb="2",
        consumerMaxCount="3",
    )
