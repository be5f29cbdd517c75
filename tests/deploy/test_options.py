"""deploy/options.py: context values into typed options, without synthesizing (no jsii)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy.errors import ContextError
from deploy.options import (
    FARGATE_SIZES,
    LOG_RETENTION_DAYS,
    ON_DEMAND_INITIAL_SHARDS,
    StackOptions,
    read_options,
)


def options(**context: object) -> StackOptions:
    return read_options(context.get)


def test_defaults_are_the_small_cheap_deployment() -> None:
    got = options()
    assert got.on_demand and got.shards is None
    assert got.consumer_count == 1
    assert (got.consumer_cpu, got.consumer_memory) == (512, 1024)
    assert got.trend_rate_minutes == 1
    assert not got.rows_table_pitr
    assert got.alert_emails == got.alert_phones == got.oncall_emails == got.oncall_phones == ()


@given(shards=st.integers(1, 500), per_task=st.integers(1, 50))
def test_one_task_per_n_shards(shards: int, per_task: int) -> None:
    got = options(shards=str(shards), shardsPerTask=str(per_task))
    assert got.shards == shards
    assert got.consumer_count == math.ceil(shards / per_task)
    # Never fewer tasks than that, never more than shards (a task without a lease idles).
    assert got.consumer_count * per_task >= shards
    assert (got.consumer_count - 1) * per_task < shards
    assert got.consumer_max_count == max(got.consumer_count, shards)


def test_on_demand_counts_its_initial_shards_and_leaves_headroom() -> None:
    got = options(shards="on-demand", shardsPerTask="2")
    assert got.consumer_count == ON_DEMAND_INITIAL_SHARDS // 2
    assert got.consumer_max_count == 4 * got.consumer_count
    assert options(shards="0").on_demand


def test_explicit_counts_win() -> None:
    got = options(shards="8", consumerCount="3", consumerMaxCount="5")
    assert (got.consumer_count, got.consumer_max_count) == (3, 5)


def test_lists_are_split_trimmed_and_validated() -> None:
    got = options(alertEmails=" a@example.com, b@example.org ,", alertPhones=["+15555550100"])
    assert got.alert_emails == ("a@example.com", "b@example.org")
    assert got.alert_phones == ("+15555550100",)


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"shards": "three"}, "shards"),
        ({"shards": "-1"}, "shards"),
        ({"shardsPerTask": "0"}, "shardsPerTask"),
        ({"consumerCount": "4", "consumerMaxCount": "2"}, "consumerMaxCount"),
        ({"consumerCpu": "300"}, "consumerCpu"),
        ({"consumerCpu": "512", "consumerMemory": "512"}, "consumerMemory"),
        ({"logRetentionDays": "10"}, "logRetentionDays"),
        ({"lakeInfrequentAccessDays": "10"}, "lakeInfrequentAccessDays"),
        ({"lakeInfrequentAccessDays": "60", "lakeGlacierDays": "70"}, "lakeGlacierDays"),
        ({"alertEmails": "not-an-address"}, "alertEmails"),
        ({"oncallPhones": "555-0100"}, "oncallPhones"),
        ({"rowsTablePitr": "yes"}, "rowsTablePitr"),
        ({"consumerImageRepository": "Bad Name"}, "consumerImageRepository"),
    ],
)
def test_bad_values_name_the_context_key(context: dict[str, object], named: str) -> None:
    with pytest.raises(ContextError) as raised:
        options(**context)
    assert raised.value.name == named
    message = str(raised.value)
    assert message.startswith(f"context {named}=") and "\n" not in message
    assert "expected" in message


def test_every_fargate_size_and_retention_is_accepted() -> None:
    for cpu, memories in FARGATE_SIZES.items():
        for memory in memories:
            got = options(consumerCpu=str(cpu), consumerMemory=str(memory))
            assert (got.consumer_cpu, got.consumer_memory) == (cpu, memory)
    for days in LOG_RETENTION_DAYS:
        assert options(logRetentionDays=str(days)).log_retention_days == days


def test_every_retention_has_a_cdk_name() -> None:
    from deploy.stockpipe_stack import LOG_RETENTION

    assert tuple(LOG_RETENTION) == LOG_RETENTION_DAYS
