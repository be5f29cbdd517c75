"""The CDK app: `cdk synth` / `cdk deploy` run this (deploy/cdk.json)."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script from deploy/: make the repository root importable (deploy, stockpipe, ...).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aws_cdk as cdk

from deploy import nag
from deploy.errors import DeployError
from deploy.stockpipe_stack import StockpipeStack


def build(app: cdk.App) -> StockpipeStack:
    """The stack, checked by cdk-nag's AwsSolutions rules (a finding fails the synth)."""
    # No env: the stack is environment-agnostic (no lookups at synth); `cdk deploy` deploys it
    # to the account and region of the CLI's credentials.
    stack = StockpipeStack(
        app,
        str(app.node.try_get_context("stackName") or "Stockpipe"),
        description="stockpipe: Kinesis -> KCL consumer (ECS) -> DynamoDB + S3; trend alerts",
    )
    nag.check(app, stack)
    return stack


def main() -> None:
    app = cdk.App()
    try:
        build(app)
    except DeployError as error:
        # A bad -c value: one line naming it, no traceback.
        sys.stderr.write(f"stockpipe deploy: {error}\n")
        raise SystemExit(2) from None
    app.synth()


if __name__ == "__main__":
    main()
