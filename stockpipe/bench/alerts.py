"""``stockpipe bench alerts``: the alert run at 10,000 and 50,000 symbols on the local stack -
symbols evaluated per second, runs needed to cover them all at the Lambda's budget, and time
to alert with a one-minute schedule.

Per size, on a fresh local stack (moto server on 127.0.0.1):

1. seed, by batch writes straight into DynamoDB, what the pipeline leaves between two runs:
   per symbol the consumer's state item (its window: the watermark), the trend cursor of the
   previous run (20 prices in, SMA-5 below SMA-20) and one new durable row; every
   ``crossing_every``-th symbol's new row crosses SMA-5 above SMA-20 (a golden-cross alert);
2. one run through the Lambda's code (trend/handlers.py ``build_ports`` + trend/runner.py
   ``run_once``) with the Lambda's budget: symbols reached and seconds give the rate and the
   symbols per run S; runs needed R = ceil(N / S);
3. each crossing alert's SNS message is read back from the SQS queue subscribed to the topic;
   its ``SentTimestamp`` minus the run's start is the measured time from a run's start to the
   alert, at the symbol's place in the run;
4. time to alert is then composed (what is measured and what is assumed is printed with it):
   pipeline (PutRecords -> row durable: not measured here, uniform in [0, flush interval) -
   the consumer commits every STOCKPIPE_FLUSH_SECONDS) + wait for the next scheduled run
   (uniform in [0, 60 s)) + 60 s for each run the rotation needs before it reaches the symbol
   (its distance from the rotation point uniform over the N symbols: k = distance // S) + the
   measured run-start-to-alert time of the crossing alert nearest that place in a run.

Not a test: a benchmark prints its figure and its command (README, Performance).
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from boto3.dynamodb.types import TypeSerializer
from pydantic import SecretStr

from consumer.sinks.state_store import padded
from core import aws
from core.contracts.row import EnrichedRow
from core.contracts.schema import row_to_item
from core.contracts.tick import format_ts
from core.contracts.window import SymbolWindow, encode_window
from core.settings import Settings
from trend.anomaly import AnomalyState
from trend.crossover import CrossoverState
from trend.cursor import SymbolCursor, encode_cursor

SCHEDULE_SECONDS: Final = 60.0  # the deployed schedule: rate(1 minute)
# The deployed function's budget: its 60 s timeout (deploy/stockpipe_stack.py
# TREND_TIMEOUT_SECONDS) minus the runner's 15 s safety margin.
LAMBDA_BUDGET_SECONDS: Final = 45.0
T0: Final = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)  # the previous run's last row
T1: Final = T0 + timedelta(minutes=1)  # the new row
# 15 prices of 100 then 5 of 99: SMA-5 below SMA-20. A new price p makes the last 20
# 14 x 100, 5 x 99, p: 4 * sum5 - sum20 = 3p - 311, so 103.70 crosses up (3 x 103.70 = 311.1)
# and 99.00 does not; both are moves under 5 %, so no anomaly alert mixes in.
PRIMED: Final = [Decimal(100)] * 15 + [Decimal(99)] * 5
CROSSING_PRICE: Final = Decimal("103.70")
QUIET_PRICE: Final = Decimal("99.00")
BATCH: Final = 25  # BatchWriteItem's maximum
WRITERS: Final = 4


@dataclass(frozen=True)
class SizeResult:
    symbols: int
    seed_items: int
    seed_seconds: float
    budget: float
    run_seconds: float
    reached: int  # symbols the measured run finished
    crossings: int  # crossing alerts delivered by the measured run
    complete: bool
    offsets: list[tuple[int, float]]  # (place in the run, seconds from run start to SQS)
    p50: float
    p99: float
    workers: int = 1
    query_ms: float = 0.0  # mean Query round trip in the run
    get_ms: float = 0.0  # mean GetItem round trip in the run

    @property
    def per_second(self) -> float:
        return self.reached / self.run_seconds

    @property
    def per_run(self) -> int:
        """Symbols a run with the budget reaches: measured when it ran out of time, else the
        measured rate times the budget (at least every symbol)."""
        if self.complete:
            return max(self.symbols, int(self.per_second * self.budget))
        return self.reached

    @property
    def runs_needed(self) -> int:
        return math.ceil(self.symbols / self.per_run)


def symbol_name(number: int) -> str:
    return f"B{number:05d}"


def _state_item(symbol: str, price: Decimal, serialize: Any) -> dict[str, Any]:
    recent = [QUIET_PRICE, QUIET_PRICE, QUIET_PRICE, price]
    window = SymbolWindow(
        last_ts=T1, last_price=price, recent=recent, recent_sum=sum(recent, Decimal(0))
    )
    return {
        "symbol": serialize(symbol),
        "window": serialize(encode_window(window)),
        "shard_id": serialize("shardId-000000000000"),
        "sequence_number": serialize("1"),
        "position": serialize(padded("1")),
        "updated_at": serialize(format_ts(T1)),
    }


def _cursor_item(symbol: str, serialize: Any) -> dict[str, Any]:
    crossover = CrossoverState(
        prices=list(PRIMED),
        sum_short=sum(PRIMED[-5:], Decimal(0)),
        sum_long=sum(PRIMED, Decimal(0)),
        last_sign=-1,
        last_ts=T0,
    )
    cursor = SymbolCursor(format_ts(T0), format_ts(T0), crossover, AnomalyState())
    return {
        "symbol": serialize(symbol),
        "position": serialize(format_ts(T0)),
        "row_ts": serialize(format_ts(T0)),
        "cursor": serialize(encode_cursor(cursor)),
        "updated_at": serialize(format_ts(T0)),
    }


def _row_item(symbol: str, price: Decimal, serialize: Any, ttl: timedelta) -> dict[str, Any]:
    change = price - QUIET_PRICE
    row = EnrichedRow(
        symbol=symbol,
        ts=T1,
        price=price,
        open=None,
        high=None,
        low=None,
        volume=None,
        source="bench",
        prev_price=QUIET_PRICE,
        change=change,
        change_pct=(change / QUIET_PRICE * 100).quantize(Decimal("1e-10")),
        anomaly=False,
        ma_4=None,
        shard_id="shardId-000000000000",
        sequence_number="1",
        arrival_ts=T1,
    )
    return {k: serialize(v) for k, v in row_to_item(row, ttl).items()}


def _requests(symbols: int, crossing_every: int, settings: Settings) -> Iterator[tuple[str, Any]]:
    serialize = TypeSerializer().serialize
    ttl = timedelta(days=36500)  # the rows must not expire under moto's TTL sweep
    for number in range(symbols):
        symbol = symbol_name(number)
        price = CROSSING_PRICE if number % crossing_every == 0 else QUIET_PRICE
        yield settings.state_table, _state_item(symbol, price, serialize)
        yield settings.cursor_table, _cursor_item(symbol, serialize)
        yield settings.rows_table, _row_item(symbol, price, serialize, ttl)


def _write_batch(dynamodb: Any, batch: Sequence[tuple[str, Any]]) -> None:
    request: dict[str, list[Any]] = {}
    for table, item in batch:
        request.setdefault(table, []).append({"PutRequest": {"Item": item}})
    while request:
        request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def seed(dynamodb: Any, settings: Settings, symbols: int, crossing_every: int) -> int:
    """What a quiet minute leaves for the run, by BatchWriteItem (25 items a call, a few calls
    in flight: moto's HTTP round trip, not its work, is most of a call)."""
    items = list(_requests(symbols, crossing_every, settings))
    batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        for done in pool.map(lambda b: _write_batch(dynamodb, b), batches):
            del done
    return len(items)


def _delivered(sqs: Any, queue_url: str) -> Iterator[tuple[str, float]]:
    """(symbol, SentTimestamp in epoch seconds) of every message in the queue, drained."""
    import json

    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["SentTimestamp"]
        ).get("Messages", [])
        if not batch:
            return
        for message in batch:
            doc = json.loads(json.loads(message["Body"])["Message"])
            yield doc["symbol"], int(message["Attributes"]["SentTimestamp"]) / 1000
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )


def time_to_alert(
    offsets: Sequence[tuple[int, float]],
    symbols: int,
    per_run: int,
    flush_seconds: float,
    samples: int,
    seed: int,
    rate: float | None = None,
) -> tuple[float, float]:
    """p50, p99 of: pipeline U[0, flush) + schedule wait U[0, 60) + 60 s x (distance // S)
    + the measured offset of the crossing alert nearest (distance % S) in a run; past the
    last measured place (a run that reached every symbol before its budget), that offset plus
    the extra places at ``rate`` symbols/s."""
    if not offsets:
        raise ValueError("no crossing alert was delivered in the measured run")
    ordered = sorted(offsets)
    places = [p for p, _ in ordered]
    rng = random.Random(seed)
    values = []
    for _ in range(samples):
        runs_before, place = divmod(rng.randrange(symbols), per_run)
        if rate is not None and place > places[-1]:
            offset = ordered[-1][1] + (place - places[-1]) / rate
        else:
            i = bisect.bisect_left(places, place)
            near = min(
                (j for j in (i - 1, i) if 0 <= j < len(places)),
                key=lambda j: abs(places[j] - place),
            )
            offset = ordered[near][1]
        values.append(
            rng.uniform(0, flush_seconds)
            + rng.uniform(0, SCHEDULE_SECONDS)
            + SCHEDULE_SECONDS * runs_before
            + offset
        )
    values.sort()
    return values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.99))]


class CallTimer:
    """Wall time and count of each DynamoDB operation a client makes (botocore's before-call
    and after-call events; the request's own context carries its start, so threads are fine)."""

    def __init__(self, client: Any) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def _after(self, context: dict[str, Any], model: Any, **_: Any) -> None:
        elapsed = time.perf_counter() - context.get("bench_started", time.perf_counter())
        with self._lock:
            self.seconds[model.name] = self.seconds.get(model.name, 0.0) + elapsed
            self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def mean_ms(self, operation: str) -> float:
        calls = self.calls.get(operation, 0)
        return 1000 * self.seconds.get(operation, 0.0) / calls if calls else 0.0


def bench_size(
    env: dict[str, str], symbols: int, budget: float, crossing_every: int, samples: int, seed_: int
) -> SizeResult:
    from botocore.config import Config

    from trend.budget import Budget
    from trend.handlers import build_ports, policy_from
    from trend.runner import run_once

    settings = Settings(
        region=env["STOCKPIPE_REGION"],
        endpoint_url=env["STOCKPIPE_ENDPOINT_URL"],
        alerts_topic_arn=env["STOCKPIPE_ALERTS_TOPIC_ARN"],
        alerts_queue_url=env["STOCKPIPE_ALERTS_QUEUE_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SecretStr(env["AWS_SECRET_ACCESS_KEY"]),
    )
    session = aws.session(settings)
    config = Config(max_pool_connections=WRITERS * 2)
    dynamodb = session.client("dynamodb", endpoint_url=settings.endpoint_url, config=config)
    started = time.perf_counter()
    items = seed(dynamodb, settings, symbols, crossing_every)
    seed_seconds = time.perf_counter() - started
    # The run's own client, timed per operation.
    run_client = session.client("dynamodb", endpoint_url=settings.endpoint_url)
    calls = CallTimer(run_client)
    # The wall clock of the run: a minute after the new rows, so they are settled.
    ports = build_ports(settings, dynamodb=run_client, clock=lambda: T1 + timedelta(minutes=1))
    policy = policy_from(settings)
    run_started = time.time()
    report = run_once(ports, policy, "bench", Budget(budget))
    reached = report.symbols_total - report.symbols_remaining
    sqs = session.client("sqs", endpoint_url=settings.endpoint_url)
    assert settings.alerts_queue_url is not None
    place = {symbol_name(n): n for n in range(symbols)}  # the first run starts at the first
    offsets = [
        (place[symbol], sent - run_started)
        for symbol, sent in _delivered(sqs, settings.alerts_queue_url)
    ]
    result = SizeResult(
        symbols=symbols,
        seed_items=items,
        seed_seconds=seed_seconds,
        budget=budget,
        run_seconds=report.seconds,
        reached=reached,
        crossings=report.crossings_sent,
        complete=report.complete,
        offsets=offsets,
        p50=0.0,
        p99=0.0,
        workers=policy.workers,
        query_ms=calls.mean_ms("Query"),
        get_ms=calls.mean_ms("GetItem"),
    )
    p50, p99 = time_to_alert(
        offsets,
        symbols,
        result.per_run,
        settings.flush_seconds,
        samples,
        seed_,
        result.per_second,
    )
    return SizeResult(**{**result.__dict__, "p50": p50, "p99": p99})


@dataclass(frozen=True)
class Scaled:
    """A size's figures at the reference run's cost per symbol (the bound's arithmetic)."""

    symbols: int
    per_run: int
    runs_needed: int
    p50: float
    p99: float


def scaled(reference: SizeResult, symbols: int, flush: float, samples: int, seed_: int) -> Scaled:
    per_run = reference.per_run
    p50, p99 = time_to_alert(
        reference.offsets, symbols, per_run, flush, samples, seed_, reference.per_second
    )
    return Scaled(symbols, per_run, math.ceil(symbols / per_run), p50, p99)


def bench_alerts(
    sizes: Sequence[int],
    reference: int,
    budget: float,
    crossing_every: int,
    samples: int,
    seed_: int,
) -> tuple[SizeResult, list[SizeResult]]:
    from stockpipe.main_job import local_pipeline

    results = []
    for symbols in [reference, *sizes]:
        with local_pipeline(1) as env:  # a fresh stack per size: nothing left from the last
            results.append(bench_size(env, symbols, budget, crossing_every, samples, seed_))
    return results[0], results[1:]


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def describe(result: SizeResult) -> str:
    extrapolated = " (rate x budget: the run reached all)" if result.complete else ""
    return (
        f"bench alerts {result.symbols:,} symbols, measured on moto: {_rate(result.per_second)} "
        f"symbols/s ({result.reached:,} in {result.run_seconds:.1f} s of a {result.budget:g} s "
        f"budget, {result.workers} workers, {result.crossings:,} crossing alerts sent); "
        f"symbols per run {result.per_run:,}{extrapolated}, runs to cover all "
        f"{result.runs_needed}; time to alert p50 {result.p50:.1f} s, p99 {result.p99:.1f} s; "
        f"mean GetItem {result.get_ms:.1f} ms, Query {result.query_ms:.1f} ms (seeded "
        f"{result.seed_items:,} items in {result.seed_seconds:.1f} s)"
    )


def describe_scaled(result: Scaled, reference: SizeResult) -> str:
    return (
        f"bench alerts {result.symbols:,} symbols at the {reference.symbols:,}-symbol run's cost "
        f"per symbol: symbols per run {result.per_run:,}, runs to cover all "
        f"{result.runs_needed}; time to alert p50 {result.p50:.1f} s, p99 {result.p99:.1f} s"
    )


MOTO_NOTE: Final = (
    "moto's Query visits every item of the table (moto/dynamodb/models/table.py), so on the "
    "local stack a symbol's Query - and its cost - grows with the number of rows, unlike "
    "DynamoDB's; the lines 'at the N-symbol run's cost' apply the bound (S = budget / cost "
    "per symbol, R = ceil(symbols / S)) with the cost measured where that effect is small."
)


def derivation(flush_seconds: float, samples: int, seed_: int) -> str:
    return (
        "time to alert = pipeline, PutRecords -> row durable (NOT measured here: uniform in "
        f"[0, {flush_seconds:g} s), the consumer's flush interval STOCKPIPE_FLUSH_SECONDS) + "
        f"wait for the next run (uniform in [0, {SCHEDULE_SECONDS:g} s), one-minute schedule) "
        f"+ {SCHEDULE_SECONDS:g} s x runs the rotation needs before it reaches the symbol "
        "(distance from the rotation point uniform over the symbols, // symbols per run) + "
        "MEASURED time from the run's start to the alert's SNS message in the SQS subscription "
        "(SentTimestamp) for the crossing alert nearest that place in the measured run; "
        f"{samples:,} samples, seed {seed_}. Local moto server on 127.0.0.1, not AWS: DynamoDB "
        "and SNS round trips there set the rate."
    )
