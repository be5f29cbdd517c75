"""``--source synthetic`` through the real CLI into a 2-shard stream on a local moto server,
then the whole stream read back: count and content equal what the generator produced."""

from __future__ import annotations

import time

import pytest

from producer.sources import SyntheticSource, tick_records
from stockpipe.cli import main
from tests.producer.fakes import MotoKinesis


@pytest.mark.slow
def test_synthetic_at_a_rate_arrives_whole_and_in_order(moto_kinesis: MotoKinesis) -> None:
    moto_kinesis.create_stream("stockpipe-ticks", shards=2)
    symbols, rate, seconds, seed = 60, 400, 3, 5
    started = time.monotonic()
    code = main(
        [
            "produce",
            "--source",
            "synthetic",
            "--symbols",
            str(symbols),
            "--rate",
            str(rate),
            "--duration",
            f"{seconds}s",
            "--seed",
            str(seed),
        ]
    )
    elapsed = time.monotonic() - started
    assert code == 0
    assert seconds - 0.1 <= elapsed < seconds + 3  # paced, not a burst

    expected = list(tick_records(SyntheticSource(symbols, seed, rate * seconds).ticks()))
    shards = moto_kinesis.read_all("stockpipe-ticks")
    assert len(shards) == 2 and all(shards.values())  # both shards were used
    got = [record for records in shards.values() for record in records]
    assert len(got) == rate * seconds
    assert sorted(got) == sorted(expected)  # same content, nothing twice, nothing missing
    for key in {k for k, _ in expected}:  # per symbol, in the order generated
        in_stream = [d for records in shards.values() for k, d in records if k == key]
        assert in_stream == [d for k, d in expected if k == key]
