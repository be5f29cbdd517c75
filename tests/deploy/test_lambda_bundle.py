"""The trend Lambda's bundle (deploy/lambda_bundle.py), without running pip: the distributions
it installs cover everything ``trend.handlers`` imports, at the project's own version ranges,
as wheels for the function's runtime."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy import lambda_bundle
from deploy.lambda_bundle import LAMBDA_DISTRIBUTIONS, copy_project, lambda_requirements
from tests.deploy.conftest import Synth

ROOT = Path(__file__).resolve().parents[2]
# What the Lambda Python runtime ships (and its boto3 is used rather than a bundled one).
RUNTIME_PROVIDED = {"boto3", "botocore", "jmespath", "s3transfer", "python-dateutil", "urllib3"}
RUNTIME_PROVIDED |= {"six"}


def _closure(names: tuple[str, ...]) -> set[str]:
    """The distributions pip installs for ``names`` (their requirements, recursively, extras
    not included), as installed here."""
    env = default_environment() | {"extra": ""}
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate(env):
                todo.append(canonicalize_name(requirement.name))
    return seen


def test_bundle_covers_the_handlers_import_closure() -> None:
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, trend.handlers; print('\\n'.join(sorted(sys.modules)))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    top_level = {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names)
    providers = metadata.packages_distributions()
    own = {"core", "stockpipe", "producer", "consumer", "trend", "lake"}
    needed = {
        canonicalize_name(dist)
        for module in top_level - own
        if not module.startswith("_")
        for dist in providers.get(module, [module])
    }
    bundled = _closure(LAMBDA_DISTRIBUTIONS)
    missing = needed - bundled - {canonicalize_name(n) for n in RUNTIME_PROVIDED}
    assert not missing, f"trend.handlers imports {missing}: add them to the trend extra"
    # And nothing heavy comes along.
    for heavy in ("pyarrow", "duckdb", "pandas", "numpy", "matplotlib", "yfinance"):
        assert heavy not in bundled


def test_requirements_are_the_projects_own_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dependencies = project["dependencies"] + project["optional-dependencies"]["trend"]
    requirements = lambda_requirements()
    # The ground's and the trend extra's, less the runtime's boto3.
    assert {canonicalize_name(Requirement(r).name) for r in dependencies} - {
        canonicalize_name(Requirement(r).name) for r in requirements
    } == {"boto3"}
    assert len(requirements) == len(LAMBDA_DISTRIBUTIONS)
    assert set(requirements) <= set(dependencies)
    assert [canonicalize_name(Requirement(r).name) for r in requirements] == [
        canonicalize_name(n) for n in LAMBDA_DISTRIBUTIONS
    ]


def test_pip_targets_the_functions_runtime(tmp_path: Path) -> None:
    wheel, deps, project = lambda_bundle.pip_commands(str(tmp_path / "out"), "wheels", ROOT)
    assert wheel[wheel.index("wheel") :] == [
        "wheel",
        "--no-deps",
        "--wheel-dir",
        "wheels",
        str(ROOT),
    ]
    assert deps[deps.index("--platform") + 1] == "manylinux2014_x86_64"
    assert deps[deps.index("--python-version") + 1] == "3.13"
    assert "--only-binary=:all:" in deps
    assert deps[deps.index("-c") + 1] == str(ROOT / "requirements/constraints.txt")
    assert deps[deps.index("--target") + 1] == str(tmp_path / "out")
    assert "--no-deps" in project and project[-1] == "stockpipe"
    assert project[project.index("--find-links") + 1] == "wheels"


def test_wheels_match_the_functions_runtime(synth: Synth) -> None:
    (function,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "trend.handlers.handler"
    ]
    assert function["Runtime"] == f"python{lambda_bundle.LAMBDA_PYTHON_VERSION}"
    assert function["Architectures"] == ["x86_64"]
    assert lambda_bundle.LAMBDA_PLATFORM.endswith("_x86_64")


def test_wheel_is_built_from_a_copy_of_the_declared_packages(tmp_path: Path) -> None:
    copied = copy_project(tmp_path / "source")
    names = sorted(p.name for p in copied.iterdir())
    assert names == [
        "README.md",
        "consumer",
        "core",
        "lake",
        "producer",
        "pyproject.toml",
        "requirements",
        "stockpipe",
        "trend",
    ]
    assert (copied / "trend/handlers.py").is_file()
    assert not list(copied.rglob("__pycache__"))
    assert not (copied / "consumer/Dockerfile").exists()
    assert re.search(r"\[project\]", (copied / "pyproject.toml").read_text())
