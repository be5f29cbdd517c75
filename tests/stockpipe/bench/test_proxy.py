"""``stockpipe bench proxy`` runs end to end and prints its figures and its command (its
figures are measurements, not asserted: speed is the benchmark's job, not a test's)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_proxy_prints_figures_and_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stockpipe", "bench", "proxy", "--calls", "30", "--latency-ms", "2"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.splitlines()
    assert lines[-1] == "command: stockpipe bench proxy --calls 30 --latency-ms 2"
    assert sum("through the proxy p50" in line for line in lines) == 4
    assert sum("p50 - (2 + direct p50)" in line for line in lines) == 2
