"""The proxy's options, shared by ``python -m stockpipe.local.proxy`` and ``stockpipe local up``
(which starts the proxy with them and records them in the stack's state file)."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path

from stockpipe.local.latency import Latency

LATENCY_HELP = (
    "delay added to every proxied request before it is forwarded, in ms: fixed; with "
    "--latency-jitter-ms J uniform on [N-J, N+J]; with --latency-p99-ms P lognormal with median "
    "N and 99th percentile P"
)


@dataclass(frozen=True)
class ProxyOptions:
    latency: Latency
    faults: Path | None = None
    seed: int = 0

    @property
    def wanted(self) -> bool:
        """Whether a proxy is asked for at all (it is off by default)."""
        return not self.latency.off or self.faults is not None

    def argv(self) -> list[str]:
        out = ["--latency-ms", f"{self.latency.median_ms:g}", "--seed", str(self.seed)]
        if self.latency.jitter_ms:
            out += ["--latency-jitter-ms", f"{self.latency.jitter_ms:g}"]
        if self.latency.p99_ms is not None:
            out += ["--latency-p99-ms", f"{self.latency.p99_ms:g}"]
        if self.faults is not None:
            out += ["--faults", str(self.faults)]
        return out


def non_negative_ms(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not (math.isfinite(number) and number >= 0):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of milliseconds >= 0")
    return number


def whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


def add_arguments(
    parser: argparse.ArgumentParser, env_defaults: bool = False, seed_flag: str = "--seed"
) -> None:
    """The latency and fault flags. With ``env_defaults`` (``stockpipe local up``) their defaults
    come from ``STOCKPIPE_LOCAL_LATENCY_MS``, ``..._LATENCY_JITTER_MS``, ``..._LATENCY_P99_MS``,
    ``STOCKPIPE_LOCAL_FAULTS`` and ``STOCKPIPE_LOCAL_PROXY_SEED``, so code that runs ``local up``
    with an environment of its own can ask for a proxy without new flags."""

    def default(name: str) -> str | None:
        # An empty variable means unset (``VAR= stockpipe local up``), not "0" or the path "".
        return (os.environ.get(f"STOCKPIPE_LOCAL_{name}") or None) if env_defaults else None

    group = parser.add_argument_group("proxy (latency and fault injection; off by default)")
    group.add_argument(
        "--latency-ms",
        type=non_negative_ms,
        default=default("LATENCY_MS") or 0.0,
        help=LATENCY_HELP,
    )
    group.add_argument(
        "--latency-jitter-ms", type=non_negative_ms, default=default("LATENCY_JITTER_MS") or 0.0
    )
    group.add_argument("--latency-p99-ms", type=non_negative_ms, default=default("LATENCY_P99_MS"))
    group.add_argument(
        "--faults",
        type=Path,
        default=default("FAULTS"),
        metavar="FILE.json",
        help="fault schedule (see README: Local endpoints, the proxy)",
    )
    group.add_argument(
        seed_flag,
        dest="proxy_seed",
        type=whole_number,
        default=default("PROXY_SEED") or 0,
        help="seed of the latency draws, and of the fault draws unless the fault file has one",
    )


def options_from(args: argparse.Namespace) -> ProxyOptions:
    """The options of parsed arguments; a bad combination raises a UsageError naming it.
    (argparse applies ``type`` to string defaults too, so env defaults are checked alike.)"""
    latency = Latency(args.latency_ms, args.latency_jitter_ms, args.latency_p99_ms)
    faults = None if args.faults is None else Path(args.faults)
    return ProxyOptions(latency, faults, args.proxy_seed)
