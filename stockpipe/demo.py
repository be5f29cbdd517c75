"""The main job (for now): the bundled real dataset through ``process`` and ``trend``, then a
summary a person can read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgspec

from consumer.file_run import process_file
from consumer.pipeline import Counts
from core.contracts.tick import encode_tick
from producer.datasets import load_dataset
from trend.file_run import TrendSummary, trend_file

# A few records the way real feeds go wrong, appended so the run shows dead-lettering:
# not JSON, a naive timestamp, a negative price, a late tick, an exact duplicate.
_BAD_RECORDS = (
    b"this is not json",
    b'{"symbol":"AAPL","ts":"2013-03-01T16:00:00","price":430.47}',
    b'{"symbol":"MSFT","ts":"2013-03-04T21:00:00Z","price":-1}',
    b'{"symbol":"IBM","ts":"2001-01-02T21:00:00Z","price":87.0}',
)


@dataclass(frozen=True)
class DemoResult:
    ticks_path: Path
    rows_path: Path
    dead_letter_path: Path
    signals_path: Path
    counts: Counts
    trend: TrendSummary


def run_demo(workdir: Path, dataset: str) -> DemoResult:
    workdir.mkdir(parents=True, exist_ok=True)
    ticks = load_dataset(dataset)
    ticks_path = workdir / "ticks.jsonl"
    with ticks_path.open("wb") as out:
        for tick in ticks:
            out.write(encode_tick(tick) + b"\n")
        out.write(encode_tick(ticks[-1]) + b"\n")  # the exact duplicate
        for raw in _BAD_RECORDS:
            out.write(raw + b"\n")
    rows_path = workdir / "rows.jsonl"
    dead_path = workdir / "dead-letters.jsonl"
    signals_path = workdir / "signals.jsonl"
    counts = process_file(ticks_path, rows_path, dead_path)
    trend = trend_file(rows_path, signals_path)
    return DemoResult(ticks_path, rows_path, dead_path, signals_path, counts, trend)


def describe(result: DemoResult) -> str:
    rows = [msgspec.json.decode(line) for line in result.rows_path.read_bytes().splitlines()]
    signals = [msgspec.json.decode(line) for line in result.signals_path.read_bytes().splitlines()]
    dead = [msgspec.json.decode(line) for line in result.dead_letter_path.read_bytes().splitlines()]
    per_symbol = Counter(r["symbol"] for r in rows)
    anomalies = Counter(r["symbol"] for r in rows if r["anomaly"])
    golden = Counter(s["symbol"] for s in signals if s["signal"] == "golden_cross")
    death = Counter(s["symbol"] for s in signals if s["signal"] == "death_cross")
    lines = [
        f"processed {result.ticks_path}: {result.counts.summary()}",
        "",
        f"{'symbol':<8}{'rows':>7}{'first':>12}{'last':>12}{'anomalies':>11}"
        f"{'golden':>8}{'death':>7}  last signal",
    ]
    for symbol in sorted(per_symbol):
        own = [r for r in rows if r["symbol"] == symbol]
        last = [s for s in signals if s["symbol"] == symbol]
        last_text = f"{last[-1]['signal']} on {last[-1]['ts'][:10]}" if last else "-"
        lines.append(
            f"{symbol:<8}{per_symbol[symbol]:>7}{own[0]['ts'][:10]:>12}{own[-1]['ts'][:10]:>12}"
            f"{anomalies[symbol]:>11}{golden[symbol]:>8}{death[symbol]:>7}  {last_text}"
        )
    reasons = Counter(d["reason"] for d in dead)
    lines += [
        "",
        "dead letters: " + (", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "none"),
        f"rows: {result.rows_path}",
        f"signals: {result.signals_path} ({result.trend.signals} crossovers)",
        f"dead letters: {result.dead_letter_path}",
    ]
    return "\n".join(lines)
