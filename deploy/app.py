"""The CDK app: `cdk synth` / `cdk deploy` run this (deploy/cdk.json)."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script from deploy/: make the repository root importable (deploy, stockpipe, ...).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aws_cdk as cdk

from deploy.stockpipe_stack import StockpipeStack


def main() -> None:
    app = cdk.App()
    # No env: the stack is environment-agnostic (no lookups at synth); `cdk deploy` deploys it
    # to the account and region of the CLI's credentials.
    StockpipeStack(
        app,
        str(app.node.try_get_context("stackName") or "Stockpipe"),
        description="stockpipe: Kinesis -> KCL consumer (ECS) -> DynamoDB + S3; trend alerts",
    )
    app.synth()


if __name__ == "__main__":
    main()
