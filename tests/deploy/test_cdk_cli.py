"""`cdk synth` as a user runs it: the CDK's own CLI (npm's aws-cdk, installed by `make setup`)
runs deploy/app.py, bundles the trend Lambda with pip (no Docker) and stages the consumer
image's context, with cdk-nag's checks on. No AWS account: no credentials, no instance
metadata, no telemetry or notices.

Then the bundle is imported as Lambda would: only the bundle plus what the Python runtime
provides (boto3 and its dependencies) on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.lambda_bundle import LAMBDA_DISTRIBUTIONS, LAMBDA_PYTHON_VERSION
from tests.deploy.conftest import ROOT

pytestmark = pytest.mark.slow

CDK = ROOT / ".stockpipe" / "node" / "node_modules" / ".bin" / "cdk"
# What the Lambda Python runtime provides (its boto3 is used rather than a bundled one).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
# Far below Lambda's 250 MB unzipped limit; the whole project's dependencies would not be.
MAX_BUNDLE_MB = 60


@pytest.fixture(scope="module")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CDK.exists():
        pytest.fail(f"{CDK} is missing: run make setup")
    out = tmp_path_factory.mktemp("cdk-cli") / "cdk.out"
    home = tmp_path_factory.mktemp("home")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "HOME": str(home),  # no ~/.aws, no ~/.cdk.json of this machine's user
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "SSL_CERT_FILE"):
        if name in os.environ:
            env[name] = os.environ[name]
    done = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "--no-version-reporting", "-o", str(out)],
        cwd=ROOT / "deploy",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_synth_writes_the_stack_with_no_validation_findings(cloud_assembly: Path) -> None:
    template = json.loads((cloud_assembly / "Stockpipe.template.json").read_text())
    types = {r["Type"] for r in template["Resources"].values()}
    assert {
        "AWS::Kinesis::Stream",
        "AWS::ECS::Service",
        "AWS::Lambda::Function",
        "AWS::Glue::Table",
        "AWS::Athena::WorkGroup",
        "AWS::CloudWatch::Dashboard",
    } <= types
    report = cloud_assembly / "validation-report.json"
    if report.exists():
        assert json.loads(report.read_text())["pluginReports"] == []
    manifest = json.loads((cloud_assembly / "manifest.json").read_text())
    assert not manifest.get("missing")  # no context lookup wanted an account


def _lambda_bundle(cloud_assembly: Path) -> Path:
    assets = json.loads((cloud_assembly / "Stockpipe.assets.json").read_text())["files"]
    bundles = [
        cloud_assembly / asset["source"]["path"]
        for asset in assets.values()
        if (cloud_assembly / asset["source"]["path"] / "trend" / "handlers.py").exists()
    ]
    assert len(bundles) == 1, bundles
    return bundles[0]


def test_the_lambda_bundle_holds_the_handler_and_its_distributions(cloud_assembly: Path) -> None:
    bundle = _lambda_bundle(cloud_assembly)
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in bundle.glob("*.dist-info")}
    assert {name.lower() for name in LAMBDA_DISTRIBUTIONS} <= installed
    assert "stockpipe" in installed
    # Not the whole project's dependency list.
    assert not {"pyarrow", "duckdb", "pandas", "matplotlib", "yfinance"} & installed
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    assert size < MAX_BUNDLE_MB * 1024 * 1024, f"{size / 1e6:.0f} MB"
    # Linux x86_64 CPython 3.13 wheels (the function's runtime), whatever machine bundled it.
    natives = [p.name for p in bundle.rglob("*.so")]
    assert natives and all("cpython-313-x86_64-linux-gnu" in n or "abi3" in n for n in natives)


def _interpreter(version: str) -> Path:
    """A CPython ``version`` on this machine: on PATH, or one of pyenv's (the project's
    machines carry pyenv's builds of 3.8 to 3.13 beside the system Python)."""
    found = shutil.which(f"python{version}")
    candidates = [Path(found)] if found else []
    candidates += sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    for candidate in candidates:
        ok = subprocess.run([str(candidate), "-c", "pass"], capture_output=True, check=False)
        if ok.returncode == 0:
            return candidate
    pytest.skip(f"no CPython {version} on this machine to import the Lambda bundle with")


def test_the_handler_imports_from_the_bundle_alone(cloud_assembly: Path, tmp_path: Path) -> None:
    """As in Lambda: /var/task (the bundle) and the runtime's boto3, nothing of this venv,
    under the function's own Python version."""
    lambda_python = _interpreter(LAMBDA_PYTHON_VERSION)
    bundle = _lambda_bundle(cloud_assembly)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    import importlib.util

    for package in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None, package
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    probe = (
        "import sys, trend.handlers as h\n"
        "assert callable(h.handler)\n"
        "import json\n"
        "print(json.dumps({m.__name__: getattr(m, '__file__', None) or ''"
        " for m in list(sys.modules.values())}))\n"
    )
    done = subprocess.run(
        [
            str(lambda_python),
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path[:0] = {[str(bundle), str(runtime)]!r}\n{probe}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ["PATH"], "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stdlib = Path(
        subprocess.run(
            [str(lambda_python), "-c", "import sys; print(sys.base_prefix)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    ).resolve()
    for name, file in json.loads(done.stdout).items():
        if not file:
            continue
        path = Path(file).resolve()
        allowed = (bundle.resolve(), runtime.resolve(), stdlib)
        inside = any(path.is_relative_to(root) for root in allowed)
        venv_site = Path(sys.prefix).resolve()
        runtime_link = any(part in RUNTIME_PACKAGES for part in path.parts)
        assert inside or (path.is_relative_to(venv_site) and runtime_link), (name, file)
