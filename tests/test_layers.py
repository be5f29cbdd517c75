"""The layers contract (pyproject.toml, tool.importlinter; docs/design.md "Layout") holds, and
covers every top-level package the distribution ships: a new package cannot sit outside it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict[str, object]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"])


def test_every_shipped_package_is_in_the_contract() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    roots = set(_config()["root_packages"])  # type: ignore[call-overload]
    assert shipped | {"deploy"} == roots
    (layers,) = [c for c in _config()["contracts"] if c["type"] == "layers"]  # type: ignore[attr-defined]
    layered = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    assert layered == roots


def test_the_contracts_are_kept() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "0 broken" in done.stdout
