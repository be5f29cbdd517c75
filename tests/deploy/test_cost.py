"""deploy/cost.py: the arithmetic redone by hand for the lines that decide the comparison, the
stack's own counts (alarm metrics, filters, dashboards, alert metrics) checked against the
synthesized template and the handler, and the README section equal to the generator's."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from deploy import cost
from deploy.cost import LARGE, PRICES, SMALL, Line, lambda_per_batch, stockpipe, total
from tests.deploy.conftest import ROOT, Synth


def line(lines: list[Line], service: str, starts: str) -> Line:
    (found,) = [x for x in lines if x.service == service and x.what.startswith(starts)]
    return found


def test_ticks_a_month() -> None:
    # 5 symbols, each a tick every 30 s, 30 days around the clock.
    assert SMALL.ticks == 5 * (30 * 24 * 3600 // 30) == 432_000
    assert LARGE.ticks == 1000 * 30 * 86_400 == 2_592_000_000


def test_the_deciding_lines_by_hand() -> None:
    ours_small, ours_large = stockpipe(SMALL), stockpipe(LARGE)
    theirs_large = lambda_per_batch(LARGE)
    # Fargate: 0.5 vCPU and 1 GB for 720 hours.
    fargate = sum(x.monthly for x in ours_small if x.service == "Fargate")
    assert fargate == Decimal("720") * (Decimal("0.5") * Decimal("0.04048") + Decimal("0.004445"))
    # One write unit per row: 2.592 billion writes at $0.625 a million.
    assert line(ours_large, "DynamoDB", "rows: one write").monthly == Decimal("1620.000")
    # One PUT per tick at $0.005 per thousand.
    assert line(theirs_large, "S3", "one object per tick").monthly == Decimal("12960.000")
    # Ours: one object per shard per commit, 4 shards. 250 ticks/s a shard reach the 2,000
    # records of a commit in 8 s, before the 10-second timer.
    puts = line(ours_large, "S3", "Parquet objects")
    assert puts.quantity * 1000 == 4 * 30 * 86_400 / 8
    # State at each of those commits: the shard's 250 symbols in 3 transactions (99 + 99 +
    # 52), each with a fence check; every item at 2 write units: 2 x 253 units.
    state = line(ours_large, "DynamoDB", "state: per commit")
    assert state.quantity * 10**6 == 4 * 30 * 86_400 / 8 * 2 * (250 + 3)
    # The small workload: a tick every 6 s, so every commit holds one symbol and one check.
    small_state = line(ours_small, "DynamoDB", "state: per commit")
    assert small_state.quantity * 10**6 == SMALL.ticks * 2 * (1 + 1)
    # On-demand Kinesis bills each record as 1 KiB: 432,000 KiB at $0.08 per GiB.
    data_in = line(ours_small, "Kinesis", "data in")
    assert abs(data_in.monthly - Decimal(432_000) / (1024 * 1024) * Decimal("0.08")) < Decimal(
        "1e-9"
    )


def test_the_lambda_design_pays_per_tick_where_stockpipe_pays_per_flush() -> None:
    for workload in (SMALL, LARGE):
        ours = line(stockpipe(workload), "S3", "Parquet objects").quantity
        theirs = line(lambda_per_batch(workload), "S3", "one object per tick").quantity
        assert ours <= theirs
    assert total(stockpipe(LARGE)) < total(lambda_per_batch(LARGE))


def test_every_line_grows_or_stays_with_the_load() -> None:
    for design in (stockpipe, lambda_per_batch):
        small = {(x.service, x.what.split(":")[0]): x.monthly for x in design(SMALL)}
        large = {(x.service, x.what.split(":")[0]): x.monthly for x in design(LARGE)}
        for key in small.keys() & large.keys():
            assert large[key] >= small[key], key


def test_every_price_is_used_and_names_its_page() -> None:
    used = {id(x.price) for w in (SMALL, LARGE) for x in stockpipe(w) + lambda_per_batch(w)}
    text = cost.markdown()
    for name, price in PRICES.items():
        assert price.page.startswith("https://aws.amazon.com/"), name
        assert (
            id(price) in used
            or f"${price.amount}" in text
            or name
            in (
                "kinesis_shard_hour",
                "kinesis_put_million",
                "ddb_wcu_hour",
                "athena_tb",
                "nat_gateway_hour",
            )
        ), name


def _alarm_metric_count(synth: Synth) -> int:
    count = 0
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        count += 1 if "MetricName" in props else sum("MetricStat" in q for q in props["Metrics"])
    return count


def test_the_stack_counts_are_the_templates(synth: Synth) -> None:
    # + the two alarms CPU target tracking creates at deploy time (not in the template).
    assert _alarm_metric_count(synth) + 2 == cost.ALARM_METRICS
    assert len(synth.of_type("AWS::CloudWatch::Dashboard")) == cost.DASHBOARDS
    assert len(synth.of_type("AWS::Logs::MetricFilter")) == cost.FILTER_METRICS
    handler = (ROOT / "trend/handlers.py").read_text()
    names = set(re.findall(r'add_metric\(name="(\w+)"', handler))
    assert len(names) == cost.TREND_METRICS
    (task,) = synth.of_type("AWS::ECS::TaskDefinition").values()
    vcpu = Decimal(task["Properties"]["Cpu"]) / 1024
    memory_gb = Decimal(task["Properties"]["Memory"]) / 1024
    assert (vcpu, memory_gb) == (SMALL.task_vcpu, SMALL.task_gb)


def test_the_readme_section_is_the_generators() -> None:
    text = cost.README.read_text()
    section = text.split(cost.BEGIN, 1)[1].split(cost.END, 1)[0]
    assert section == "\n" + cost.markdown(), (
        "deploy/README.md's cost section is stale: run `python -m deploy.cost --write-readme`"
    )


def test_write_readme_replaces_only_the_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{cost.BEGIN}\nold\n{cost.END}\n\nAfter.\n")
    cost.write_readme(readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\n") and text.endswith(f"{cost.END}\n\nAfter.\n")
    assert "old" not in text and "| **Total** |" in text
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit):
        cost.write_readme(readme)
