"""The trend Lambda's code: the project's own packages plus the distributions of its extra,
built with pip at synth time on this machine (no Docker).

What the function installs is the ground's dependencies plus the ``trend`` extra of
pyproject.toml, less what the runtime provides (boto3/botocore): written once, there;
tests/deploy checks that the handler's import closure is covered by it. Versions are the
locked ones (requirements/constraints.txt), the ones CI tested. Wheels are taken for the
function's platform (manylinux x86_64, CPython ``LAMBDA_PYTHON_VERSION``) whatever the
deploying machine is.
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
CONSTRAINTS: Final = "requirements/constraints.txt"
# The Lambda Python runtime ships these; the function uses its copy.
RUNTIME_PROVIDED: Final = frozenset({"boto3", "botocore"})
# The function's runtime (deploy/stockpipe_stack.py): CPython 3.13, supported by AWS until
# 2029; the bundle's import test (tests/deploy/test_cdk_cli.py) runs it under 3.13 too.
LAMBDA_PYTHON_VERSION: Final = "3.13"
LAMBDA_PLATFORM: Final = "manylinux2014_x86_64"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
    assert match is not None, spec
    return _canonical(match.group(0))


def lambda_requirements(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> list[str]:
    """The project's own requirement strings: the ground's and the ``trend`` extra's, less the
    runtime's."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs: list[str] = project["dependencies"] + project["optional-dependencies"]["trend"]
    return [spec for spec in specs if _name(spec) not in RUNTIME_PROVIDED]


# Distributions (besides the project itself) the function installs.
LAMBDA_DISTRIBUTIONS: Final = tuple(_name(spec) for spec in lambda_requirements())


def copy_project(destination: Path, project: Path = PROJECT_ROOT) -> Path:
    """The files the project's wheel is built from, copied (a build in the work tree would
    leave build/ behind): pyproject.toml, README.md and the packages it declares."""
    config = tomllib.loads((project / "pyproject.toml").read_text())
    patterns: list[str] = config["tool"]["setuptools"]["packages"]["find"]["include"]
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md", CONSTRAINTS):
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
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
        [
            *pip,
            "install",
            *target,
            *platform,
            "-c",
            str(source / CONSTRAINTS),
            *lambda_requirements(source / "pyproject.toml"),
        ],
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
