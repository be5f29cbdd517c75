"""``stockpipe bench TARGET``: benchmarks; each prints its figure and the command."""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

from stockpipe.commands._args import positive_float, positive_int


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="benchmarks (print their figure and command)")
    targets = bench.add_subparsers(dest="target", required=True, parser_class=type(bench))
    core = targets.add_parser("core", help="decode + validate + enrich per tick")
    core.add_argument("--ticks", type=positive_int, default=500_000)
    core.add_argument("--symbols", type=positive_int, default=5_000)
    core.add_argument("--seed", type=int, default=7)
    core.add_argument("--repeat", type=positive_int, default=3)
    core.set_defaults(handler=run_core)
    consumer = targets.add_parser("consumer", help="the shard processor, daemon line to rows")
    consumer.add_argument("--ticks", type=positive_int, default=300_000)
    consumer.add_argument("--symbols", type=positive_int, default=5_000)
    consumer.add_argument("--batch", type=positive_int, default=1_000)
    consumer.add_argument("--seed", type=int, default=7)
    consumer.add_argument(
        "--end-to-end",
        action="store_true",
        help="through the real daemon and sinks on the local stack instead (--ticks, --symbols)",
    )
    consumer.add_argument("--shards", type=positive_int, default=2, help="--end-to-end only")
    consumer.set_defaults(handler=run_consumer)
    producer = targets.add_parser("producer", help="producer: ticks/s to local Kinesis, CPU/tick")
    producer.add_argument("--ticks", type=positive_int, default=200_000)
    producer.add_argument("--push-ticks", type=positive_int, default=50_000)
    producer.add_argument("--symbols", type=positive_int, default=5_000)
    producer.add_argument("--shards", type=positive_int, default=4)
    producer.add_argument("--seed", type=int, default=7)
    producer.add_argument("--repeat", type=positive_int, default=3)
    producer.set_defaults(handler=run_producer)
    _register_fleet(targets)
    _register_lake_alerts_memory_proxy(targets)
    _register_sink_benches(targets)


def _register_lake_alerts_memory_proxy(targets: Any) -> None:
    lake = targets.add_parser("lake", help="bytes read: Parquet lake vs one JSON object a tick")
    lake.add_argument("--days", type=positive_int, default=30)
    lake.add_argument("--ticks-per-second", type=positive_int, default=1, help="scaled-down rate")
    lake.add_argument("--symbols", type=positive_int, default=100)
    lake.add_argument("--seed", type=int, default=7)
    lake.set_defaults(handler=run_lake)
    alerts = targets.add_parser(
        "alerts", help="alert runs on the local stack: symbols/s, runs to cover, time to alert"
    )
    alerts.add_argument("--symbols", type=positive_int, nargs="+", default=[10_000, 50_000])
    alerts.add_argument(
        "--budget",
        type=positive_float,
        default=45.0,  # stockpipe.bench.alerts.LAMBDA_BUDGET_SECONDS (lazy imports here)
        help="a run's budget in seconds (deployed: 60 s timeout - 15 s margin)",
    )
    alerts.add_argument(
        "--reference",
        type=positive_int,
        default=1_000,
        help="symbols of the run whose cost per symbol the sizes are also scaled from",
    )
    alerts.add_argument("--crossing-every", type=positive_int, default=50)
    alerts.add_argument("--samples", type=positive_int, default=100_000)
    alerts.add_argument("--seed", type=int, default=7)
    alerts.set_defaults(handler=run_alerts)
    memory = targets.add_parser(
        "memory", help="peak RSS and commit time with many distinct symbols, evicting or not"
    )
    memory.add_argument("--symbols", type=positive_int, default=100_000)
    memory.add_argument("--rounds", type=positive_int, default=3, help="ticks per symbol")
    memory.add_argument(
        "--max-windows", type=positive_int, default=20_000, help="the eviction cap measured"
    )
    memory.add_argument("--flush", type=positive_int, default=5_000, help="records per commit")
    memory.add_argument("--batch", type=positive_int, default=1_000, help="records per call")
    memory.set_defaults(handler=run_memory)
    proxy = targets.add_parser("proxy", help="the local proxy: overhead per call, latency check")
    proxy.add_argument("--calls", type=positive_int, default=2_000, help="calls each way")
    proxy.add_argument("--latency-ms", type=positive_float, default=20.0)
    proxy.set_defaults(handler=run_proxy)


def _register_sink_benches(targets: Any) -> None:
    """The sinks at AWS speed: catch-up, put-to-row latency, soak (stockpipe/bench/)."""
    catchup = targets.add_parser(
        "catchup", help="one shard processor draining a backlog at N ms per AWS call"
    )
    catchup.add_argument("--ticks", type=positive_int, default=60_000, help="null endpoint runs")
    catchup.add_argument("--moto-ticks", type=positive_int, default=20_000, help="moto runs")
    catchup.add_argument("--symbols", type=positive_int, default=100)
    catchup.add_argument(
        "--flush-records",
        type=positive_int,
        default=None,
        help="default: STOCKPIPE_FLUSH_RECORDS (the consumer's setting)",
    )
    catchup.add_argument(
        "--get-records",
        type=_int_list,
        default=[1_000, 10_000],
        help="records per processRecords call (a GetRecords) to compare, comma-separated",
    )
    catchup.add_argument("--writers", type=positive_int, default=32)
    catchup.add_argument("--latency-ms", type=float, default=20.0)
    catchup.add_argument("--per-record-ticks", type=positive_int, default=200)
    catchup.add_argument(
        "--backends",
        type=_backends,
        default=["moto", "null"],
        help="moto (stores, CPU-bound) and/or null (round trips only), comma-separated",
    )
    catchup.add_argument("--seed", type=int, default=7)
    catchup.set_defaults(handler=run_catchup)
    latency = targets.add_parser(
        "latency", help="PutRecords -> row readable in DynamoDB, real daemon at a steady rate"
    )
    _steady_arguments(latency)
    latency.add_argument("--duration", type=positive_int, default=60, help="seconds")
    latency.set_defaults(handler=run_latency)
    soak = targets.add_parser("soak", help="latency, lag and RSS per minute over a long run")
    _steady_arguments(soak)
    soak.add_argument("--minutes", type=positive_int, default=10)
    soak.set_defaults(handler=run_soak)


def _steady_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=positive_int, default=1_000, help="ticks/s per shard")
    parser.add_argument("--shards", type=positive_int, default=1)
    parser.add_argument("--symbols", type=positive_int, default=5)
    parser.add_argument("--flush-records", type=positive_int, default=None)
    parser.add_argument("--flush-seconds", type=positive_float, default=None)
    parser.add_argument("--latency-ms", type=float, default=20.0)


def run_latency(args: argparse.Namespace) -> int:
    from stockpipe.bench.steady_report import run_latency as bench

    print("\n".join(bench(args)))
    return 0


def run_soak(args: argparse.Namespace) -> int:
    from stockpipe.bench.steady_report import run_soak as bench

    print("\n".join(bench(args)))
    return 0


def _backends(value: str) -> list[str]:
    names = value.split(",")
    if not names or not set(names) <= {"moto", "null"}:
        raise argparse.ArgumentTypeError(f"{value!r}: expected moto, null or moto,null")
    return names


def _int_list(value: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",")]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of counts >= 1")
    return numbers


def run_catchup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.settings import Settings
    from stockpipe.bench.catchup_report import run

    args.flush_records = args.flush_records or Settings().flush_records
    print("\n".join(run(args, Path(".stockpipe/bench-catchup"))))
    return 0


def run_proxy(args: argparse.Namespace) -> int:
    from stockpipe.bench.proxy import bench_proxy, describe

    result = bench_proxy(args.calls, args.latency_ms)
    print("\n".join(describe(result, args.calls)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"  (separate processes: client, moto, stub, proxies; {os.cpu_count()} cores, load average "
        f"{load} at the end; Python {platform.python_version()})"
    )
    print(f"command: stockpipe bench proxy --calls {args.calls} --latency-ms {args.latency_ms:g}")
    return 0


def run_alerts(args: argparse.Namespace) -> int:
    from core.settings import Settings
    from stockpipe.bench.alerts import (
        MOTO_NOTE,
        bench_alerts,
        derivation,
        describe,
        describe_scaled,
        scaled,
    )

    reference, results = bench_alerts(
        args.symbols, args.reference, args.budget, args.crossing_every, args.samples, args.seed
    )
    flush = Settings().flush_seconds
    for result in [reference, *results]:
        print(describe(result))
    for result in results:
        print(
            describe_scaled(
                scaled(reference, result.symbols, flush, args.samples, args.seed), reference
            )
        )
    print(derivation(flush, args.samples, args.seed))
    print(MOTO_NOTE)
    print(
        f"command: stockpipe bench alerts --symbols {' '.join(map(str, args.symbols))} "
        f"--reference {args.reference} --budget {args.budget:g} --crossing-every "
        f"{args.crossing_every} --samples {args.samples} --seed {args.seed}"
    )
    return 0


def run_consumer(args: argparse.Namespace) -> int:
    if args.end_to_end:
        return _run_consumer_end_to_end(args)
    from stockpipe.bench.consumer import bench_consumer

    result = bench_consumer(args.ticks, args.symbols, args.batch, args.seed)
    print(
        f"bench consumer: {result.ticks / result.seconds:,.0f} ticks/s, "
        f"{result.seconds / result.ticks * 1e6:.2f} us/tick (processRecords JSON line -> rows "
        f"ready for the sinks, {args.ticks:,} ticks, {args.symbols:,} symbols, batches of "
        f"{args.batch}, one core, Python {platform.python_version()})"
    )
    print(
        f"command: stockpipe bench consumer --ticks {args.ticks} --symbols {args.symbols} "
        f"--batch {args.batch} --seed {args.seed}"
    )
    return 0


def _run_consumer_end_to_end(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stockpipe.bench.consumer_e2e import bench_end_to_end

    result = bench_end_to_end(
        args.ticks, args.symbols, args.shards, Path(".stockpipe/bench-consumer")
    )
    print(
        f"bench consumer --end-to-end: {result.records / result.seconds:,.0f} ticks/s "
        f"({result.records:,} records over {result.shards} shards in {result.seconds:.1f} s, "
        "first record to last commit, flush every 2,000 records; real MultiLangDaemon, "
        "DynamoDB + S3 on moto, kinesis-local, state and checkpoints; "
        f"Python {platform.python_version()})"
    )
    print(
        f"command: stockpipe bench consumer --end-to-end --ticks {args.ticks} "
        f"--symbols {args.symbols} --shards {args.shards}"
    )
    return 0


def _register_fleet(targets: Any) -> None:
    fleet = targets.add_parser(
        "fleet", help="the consumer as 1, 2, 3 workers on one stream; take-over after a stop"
    )
    fleet.add_argument("--ticks", type=positive_int, default=20_000)
    fleet.add_argument("--symbols", type=positive_int, default=400)
    fleet.add_argument("--shards", type=positive_int, default=4)
    fleet.set_defaults(handler=run_fleet)


def run_fleet(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stockpipe.bench.fleet import bench_takeover, bench_throughput

    base = Path(".stockpipe/bench-fleet")
    for workers in (1, 2, 3):
        result = bench_throughput(
            workers, args.ticks, args.symbols, args.shards, base / f"throughput-{workers}"
        )
        print(
            f"bench fleet: {workers} worker(s), {args.shards} shards: "
            f"{result.ticks / result.seconds:,.0f} ticks/s ({result.ticks:,} ticks in "
            f"{result.seconds:.1f} s, first record to last commit, the workers started "
            "together on a filled stream)",
            flush=True,
        )
    for takeover in bench_takeover(args.shards, base / "takeover"):
        print(
            f"bench fleet: take-over after {takeover.how} of a worker holding "
            f"{takeover.shards} shard(s): {takeover.seconds:.1f} s to the first commit by "
            "another worker on each (local: failoverTimeMillis 3000, "
            "leaseAssignmentIntervalMillis 2000)",
            flush=True,
        )
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; real "
        "MultiLangDaemons, DynamoDB + S3 on moto, kinesis-local"
    )
    print(
        f"command: stockpipe bench fleet --ticks {args.ticks} --symbols {args.symbols} "
        f"--shards {args.shards}"
    )
    return 0


def run_memory(args: argparse.Namespace) -> int:
    from stockpipe.bench.memory import run_in_child

    runs = [
        (
            "evicting",
            run_in_child(args.symbols, args.rounds, args.max_windows, args.flush, args.batch),
        ),
        ("keeping all", run_in_child(args.symbols, args.rounds, 10**9, args.flush, args.batch)),
    ]
    for label, result in runs:
        print(
            f"bench memory ({label}, cap {result.max_windows:,}): peak RSS "
            f"{result.peak_rss_mib:,.0f} MiB ({result.peak_rss_mib - result.baseline_rss_mib:,.0f}"
            f" MiB over the processor's start), {result.resident_windows:,} windows resident at "
            f"the end; {result.commits} commits of {args.flush:,} records, "
            f"{result.commit_mean_ms:,.0f} ms mean / {result.commit_max_ms:,.0f} ms max "
            f"(the call that commits: one batch applied, state saved, eviction); "
            f"{args.symbols:,} symbols x {args.rounds} ticks in {result.seconds:.1f} s"
        )
    print(
        "(in-process, state store on SQLite in a file, rows and lake no-ops; one child process "
        f"each; Python {platform.python_version()})"
    )
    print(
        f"command: stockpipe bench memory --symbols {args.symbols} --rounds {args.rounds} "
        f"--max-windows {args.max_windows} --flush {args.flush} --batch {args.batch}"
    )
    return 0


def run_core(args: argparse.Namespace) -> int:
    from stockpipe.bench.core import bench_core

    result = bench_core(args.ticks, args.symbols, args.seed, args.repeat)
    print(
        f"bench core: {result.ticks_per_second:,.0f} ticks/s, {result.micros_per_tick:.2f} us/tick "
        f"(decode+validate+enrich, {args.ticks:,} ticks over {args.symbols:,} symbols, "
        f"best of {args.repeat}, one core, Python {platform.python_version()})"
    )
    print(
        f"command: stockpipe bench core --ticks {args.ticks} --symbols {args.symbols} "
        f"--seed {args.seed} --repeat {args.repeat}"
    )
    return 0


def run_lake(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from stockpipe.bench.lake import bench_lake, describe

    with tempfile.TemporaryDirectory(prefix="stockpipe-bench-lake-") as workdir:
        result = bench_lake(
            Path(workdir), args.days, args.ticks_per_second, args.symbols, seed=args.seed
        )
    print("\n".join(describe(result)))
    print(
        f"command: stockpipe bench lake --days {args.days} --ticks-per-second "
        f"{args.ticks_per_second} --symbols {args.symbols} --seed {args.seed}"
    )
    return 0


def run_producer(args: argparse.Namespace) -> int:
    from stockpipe.bench.producer import bench_cpu, bench_push

    cpu = bench_cpu(args.ticks, args.symbols, args.seed, args.repeat)
    print(
        f"bench producer cpu: {cpu.micros_per_tick:.2f} us/tick build+batch "
        f"(of which encode {cpu.encode_micros_per_tick:.2f}; {args.ticks:,} ticks, "
        f"{args.symbols:,} symbols, {cpu.calls:,} calls to a null client, best of {args.repeat})"
    )
    push = bench_push(args.push_ticks, args.symbols, args.shards, args.seed)
    print(
        f"bench producer push: {push.ticks_per_second:,.0f} ticks/s to local moto Kinesis "
        f"({push.sent:,} ticks, {args.shards} shards, {push.calls:,} calls; CPU busy: "
        f"producer {push.client_cpu_share:.0%}, moto server {push.server_cpu_share:.0%})"
    )
    print(
        f"command: stockpipe bench producer --ticks {args.ticks} --push-ticks {args.push_ticks} "
        f"--symbols {args.symbols} --shards {args.shards} --seed {args.seed} --repeat {args.repeat}"
    )
    return 0
