"""Shared fixtures: the real dataset (loaded once), JSONL helpers, the recorded examples and
the TA-Lib crossover oracle over the real dataset. The oracles themselves live in
``tests/oracles.py``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.contracts.tick import Tick
from producer.datasets import load_dataset
from tests.oracles import (
    DATA_DIR,
    CrossoverOracle,
    MixedLine,
    crossover_oracle,
    load_mixed_lines,
    tick_to_json_line,
)


@pytest.fixture(scope="session")
def real_ticks() -> list[Tick]:
    """The bundled real dataset (daily closes of five stocks, 2000-2013), loaded once."""
    ticks = load_dataset("bokeh-stocks")
    assert len(ticks) > 10_000, "the real dataset should not be a toy"
    return ticks


@pytest.fixture(scope="session")
def real_ticks_jsonl(real_ticks: list[Tick], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real dataset as a JSONL ticks file written with json (not the producer's encoder):
    one tick a line, dataset order, New York local times with their offsets."""
    path = tmp_path_factory.mktemp("real") / "ticks.jsonl"
    path.write_text("".join(tick_to_json_line(t) + "\n" for t in real_ticks), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def real_crossover_oracle(real_ticks: list[Tick]) -> CrossoverOracle:
    """TA-Lib crossovers over each symbol's closes in the real dataset."""
    return crossover_oracle((t.symbol, t.ts, float(t.price)) for t in real_ticks)


def _as_bytes(line: str | bytes | dict[str, Any]) -> bytes:
    if isinstance(line, dict):
        return json.dumps(line).encode()
    if isinstance(line, str):
        return line.encode()
    return line


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[[str, Iterable[str | bytes | dict[str, Any]]], Path]:
    """write_jsonl(name, lines) -> path under tmp_path; dicts are json.dumps'ed, every line gets
    a "\\n" (so an empty string makes a blank line)."""

    def write(name: str, lines: Iterable[str | bytes | dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_bytes(b"".join(_as_bytes(line) + b"\n" for line in lines))
        return path

    return write


@pytest.fixture(scope="session")
def tick_examples() -> dict[str, Any]:
    """tests/data/ticks_examples.json: valid records with their expected decoding, and
    invalid ones with their reason."""
    return json.loads((DATA_DIR / "ticks_examples.json").read_text(encoding="utf-8"))


@pytest.fixture
def mixed_ticks(tmp_path: Path) -> tuple[Path, list[MixedLine]]:
    """tests/data/mixed_ticks.json written as a ticks file (LF line ends): the path, and each
    line with its expected outcome."""
    lines = load_mixed_lines()
    path = tmp_path / "mixed-ticks.jsonl"
    path.write_bytes(b"".join(line.raw + b"\n" for line in lines))
    return path, lines


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on 127.0.0.1, one per test module."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per call otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
