"""The synthesized templates pass the two linters the issue names: cdk-nag's AwsSolutions
rules (run at every synth by deploy/app.py; an unacknowledged finding fails it) and cfn-lint
(no errors). And a bad context value stops `cdk synth` with one line, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy.nag import acknowledgements
from tests.deploy.conftest import ROOT, Synth, synthesize

# What cfn-lint may still say (warnings only): W3005, a DependsOn the CDK itself adds next to
# a GetAtt that already orders the two resources (the custom resource provider, the Lambda's
# role policy). Harmless, and not ours to change.
ALLOWED_WARNINGS = {"W3005"}


def nag_findings(synth: Synth) -> list[str]:
    from aws_cdk.assertions import Annotations, Match

    annotations = Annotations.from_stack(synth.stack)
    found = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    found += annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
    return [f"{m.id}: {m.entry.data}" for m in found]


@pytest.mark.parametrize("which", ["synth", "synth_custom"])
def test_cdk_nag_has_no_unacknowledged_findings(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    assert nag_findings(synth) == []


def test_every_acknowledgement_has_a_reason_and_a_narrow_scope(synth: Synth) -> None:
    for construct, items in acknowledgements(synth.stack).items():
        for item in items:
            assert len(item.reason) >= 60, (construct.node.path, item.rule)
            if item.rule == "AwsSolutions-IAM5":
                # A wildcard finding is acknowledged for the named permissions only.
                assert item.applies_to, (construct.node.path, item.rule)


def test_cdk_nag_is_live(tmp_path: Path) -> None:
    """A wildcard grant added to the stack fails the synth (the check above can fail)."""
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam

    from deploy.app import build

    values = json.loads((ROOT / "deploy/cdk.json").read_text())["context"]
    app = cdk.App(context=values | {"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path / "out"))
    stack = build(app)
    stack.trend_function.add_to_role_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(Exception, match=r"AwsSolutions-IAM5\[Action::s3:\*\]"):
        app.synth()


def cfn_lint(template: dict[str, Any]) -> list[Any]:
    from cfnlint.api import lint

    return list(lint(json.dumps(template), regions=["us-east-1", "eu-west-1", "ap-southeast-2"]))


@pytest.mark.parametrize("which", ["synth", "synth_custom"])
def test_cfn_lint_finds_no_errors(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    template = synth.assembly.get_stack_by_name("Stockpipe").template
    matches = cfn_lint(template)
    errors = [f"{m.rule.id} {m.path}: {m.message}" for m in matches if m.rule.severity == "error"]
    assert errors == []
    others = {m.rule.id for m in matches} - ALLOWED_WARNINGS
    assert others == set(), [f"{m.rule.id}: {m.message}" for m in matches]


def test_cfn_lint_is_live(synth: Synth) -> None:
    template = json.loads(json.dumps(synth.assembly.get_stack_by_name("Stockpipe").template))
    broken = next(
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::Kinesis::Stream"
    )
    template["Resources"][broken]["Properties"]["RetentionPeriodHours"] = "a day"
    assert any(m.rule.severity == "error" for m in cfn_lint(template))


def test_a_bad_context_value_is_one_line(tmp_path: Path) -> None:
    """`cdk synth -c consumerCpu=300` as the CLI runs the app: the context arrives in
    CDK_CONTEXT_JSON, the app exits non-zero with one line naming the key."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"consumerCpu": "300"}),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    done = subprocess.run(
        [sys.executable, "app.py"],
        check=False,
        cwd=ROOT / "deploy",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    ours = [line for line in done.stderr.splitlines() if line.startswith("stockpipe deploy:")]
    assert ours == [
        "stockpipe deploy: context consumerCpu=300 is not valid: expected one of "
        "[256, 512, 1024, 2048, 4096]"
    ]
    assert "Traceback" not in done.stderr


def test_the_custom_synth_differs_where_the_context_says(synth: Synth, synth_custom: Synth) -> None:
    """Guards the fixture itself: the custom context reached the stack."""
    assert synth.stack.options != synth_custom.stack.options
    assert synthesize is not None
