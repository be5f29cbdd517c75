"""Each deployable installs only its own extra (pyproject.toml): the consumer image's
``.[consumer]`` covers everything the consumer's entry points import (the ``stockpipe consume``
command, the per-shard executable, its sinks), and leaves out the query engine, charts, quote
sources and dev tools. The Lambda's side is tests/deploy/test_lambda_bundle.py."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import ROOT
from tests.deploy.test_lambda_bundle import _closure

OWN = {"core", "producer", "consumer", "trend", "lake", "stockpipe", "deploy", "tests"}
# Imported only because this venv has them: pyarrow uses numpy when present (optional since
# pyarrow 16), botocore certifi's CA bundle (else its own); cython_runtime is no distribution.
OPTIONAL_WHEN_PRESENT = {"numpy", "certifi", "cython-runtime"}
# What the consumer process runs: the CLI's parser (every command registers itself), the
# consume command, the daemon launcher and log converter, the per-shard executable and sinks.
CONSUMER_ENTRY_POINTS = (
    "stockpipe.cli",
    "stockpipe.commands.consume",
    "consumer.daemon",
    "consumer.daemon_logs",
    "consumer.kcl_app",
    "consumer.processor",
    "consumer.sinks.lake",
    "consumer.sinks.rows_table",
    "consumer.sinks.state_store",
    "amazon_kclpy.kcl",
    "amazon_kclpy.v3.processor",
)


def _extra(name: str) -> tuple[str, ...]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"][name]
    return tuple(Requirement(spec).name for spec in specs)


def _imported_distributions(modules: tuple[str, ...], prologue: str = "") -> set[str]:
    probe = (
        f"import importlib, sys\n{prologue}\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    top_level = {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names) - OWN
    from importlib import metadata

    providers = metadata.packages_distributions()
    return {
        canonicalize_name(dist)
        for module in top_level
        if not module.startswith("_")
        for dist in providers.get(module, [module])
    }


def test_the_consumer_extra_covers_what_the_consumer_imports() -> None:
    needed = _imported_distributions(
        CONSUMER_ENTRY_POINTS, "from stockpipe.cli import build_parser; build_parser()"
    )
    installed = _closure((*_extra("consumer"), "amazon-kclpy"))
    missing = needed - installed - OPTIONAL_WHEN_PRESENT
    assert not missing, f"the consumer imports {missing}: add them to its extra"


def test_the_consumer_extra_leaves_out_what_it_does_not_run() -> None:
    installed = _closure((*_extra("consumer"), "amazon-kclpy"))
    for other in ("duckdb", "sqlglot", "matplotlib", "yfinance", "pandas", "moto", "pytest"):
        assert canonicalize_name(other) not in installed, other
