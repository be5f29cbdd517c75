"""The trend Lambda's code: the project's own packages plus the few distributions the handler
imports, built with pip at synth time on this machine (no Docker).

The whole project's dependencies (pyarrow, duckdb, matplotlib, yfinance...) would not fit in
a function, and the handler needs none of them: ``LAMBDA_DISTRIBUTIONS`` names what
``trend.handlers`` imports (boto3/botocore come with the runtime). Their version ranges are
read from pyproject.toml, so they are written once; tests/deploy checks that the handler's
import closure is covered by this list. Wheels are taken for the function's platform
(manylinux x86_64, CPython 3.11) whatever the deploying machine is.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import DockerImage, ILocalBundling

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
# Distributions (besides the project itself) the handler's import closure needs.
LAMBDA_DISTRIBUTIONS: Final = (
    "aws-lambda-powertools",
    "pydantic",
    "pydantic-settings",
    "msgspec",
    "tzdata",
)
LAMBDA_PYTHON_VERSION: Final = "3.11"
LAMBDA_PLATFORM: Final = "manylinux2014_x86_64"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lambda_requirements(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> list[str]:
    """The project's own requirement strings for ``LAMBDA_DISTRIBUTIONS`` (same ranges)."""
    dependencies: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    by_name = {}
    for spec in dependencies:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        assert match is not None, spec
        by_name[_canonical(match.group(0))] = spec
    missing = [name for name in LAMBDA_DISTRIBUTIONS if _canonical(name) not in by_name]
    if missing:
        raise ValueError(f"not dependencies of the project (pyproject.toml): {missing}")
    return [by_name[_canonical(name)] for name in LAMBDA_DISTRIBUTIONS]


def copy_project(destination: Path, project: Path = PROJECT_ROOT) -> Path:
    """The files the project's wheel is built from, copied (a build in the work tree would
    leave build/ behind): pyproject.toml, README.md and the packages it declares."""
    config = tomllib.loads((project / "pyproject.toml").read_text())
    patterns: list[str] = config["tool"]["setuptools"]["packages"]["find"]["include"]
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(project / name, destination / name)
    for package in sorted({pattern.split(".")[0].rstrip("*") for pattern in patterns}):
        shutil.copytree(
            project / package,
            destination / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "Dockerfile"),
        )
    return destination


def pip_commands(output_dir: str, wheel_dir: str, source: Path = PROJECT_ROOT) -> list[list[str]]:
    """The three pip runs: build the project's wheel from ``source``; install the handler's
    dependencies for the Lambda platform; add the project's wheel without its (full)
    dependency list."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    target = ["--target", output_dir, "--no-compile", "--upgrade"]
    platform = [
        "--platform",
        LAMBDA_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
    ]
    return [
        [*pip, "wheel", "--no-deps", "--wheel-dir", wheel_dir, str(source)],
        [*pip, "install", *target, *platform, *lambda_requirements(source / "pyproject.toml")],
        [*pip, "install", *target, "--no-deps", "--find-links", wheel_dir, "stockpipe"],
    ]


@jsii.implements(ILocalBundling)
class PipBundling:
    """CDK local bundling: runs instead of a Docker container. A failure raises (the synth
    stops with pip's message) rather than falling back to Docker."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        with tempfile.TemporaryDirectory(prefix="stockpipe-lambda-") as work:
            source = copy_project(Path(work) / "source")
            wheel_dir = str(Path(work) / "wheels")
            for command in pip_commands(output_dir, wheel_dir, source):
                subprocess.run(command, check=True, stdout=sys.stderr)
        return True
