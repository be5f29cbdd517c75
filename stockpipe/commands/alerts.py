"""``stockpipe alerts run-once | tail``: the scheduled alerting, by hand, against the configured
endpoint (locally: ``eval $(stockpipe local env)``), and what it would have sent."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from core.errors import UsageError
from stockpipe.commands._args import positive_float

# A Lambda invocation lives at most 15 minutes: a run without --time-budget gets what a
# function with the maximum timeout would (minus the runner's safety margin).
LAMBDA_MAX_SECONDS: Final = 15 * 60
# run-once's exit status when the budget ran out before every symbol was reached: not a
# failure of the alerts sent (all exactly once), but not a success a script should ignore.
EXIT_INCOMPLETE: Final = 3


def register(commands: Any) -> None:
    alerts = commands.add_parser("alerts", help="crossover and move alerts (the trend Lambda)")
    actions = alerts.add_subparsers(dest="action", required=True, parser_class=type(alerts))
    once = actions.add_parser("run-once", help="run the scheduled alert handler once, now")
    once.add_argument(
        "--create-tables",
        action="store_true",
        help="create the cursor and alerts tables first if they are missing",
    )
    once.add_argument(
        "--time-budget",
        type=positive_float,
        metavar="SECONDS",
        help=(
            "seconds the run may spend, as the Lambda's remaining time minus its safety margin "
            "(deployed: 45 for the 60 s timeout); the next run resumes where this one stopped. "
            "Default: a 15-minute function's budget"
        ),
    )
    once.set_defaults(handler=run_once)
    tail = actions.add_parser("tail", help="print the alerts delivered to the local SQS queue")
    tail.add_argument("--follow", "-f", action="store_true", help="keep waiting for more")
    tail.add_argument("--keep", action="store_true", help="do not delete what is printed")
    tail.add_argument("--json", action="store_true", help="print each SNS envelope as JSON")
    tail.set_defaults(handler=run_tail)


class _LocalContext:
    """What Powertools and the handler read from a Lambda context, for a run outside Lambda.
    ``budget``: the run's time budget; the context's remaining time is that plus the safety
    margin the handler takes off, so the handler's own arithmetic gives the run ``budget``."""

    function_name = "stockpipe-trend-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:stockpipe-trend-local"

    def __init__(self, budget: float | None = None) -> None:
        from trend.runner import SAFETY_MARGIN_SECONDS

        self.aws_request_id = str(uuid.uuid4())
        lifetime = LAMBDA_MAX_SECONDS if budget is None else budget + SAFETY_MARGIN_SECONDS
        self._deadline = time.monotonic() + lifetime

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def scheduled_event(now: datetime) -> dict[str, Any]:
    """The shape of an EventBridge ``Scheduled Event``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "local",
        "resources": [],
        "detail": {},
    }


def run_once(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from trend.handlers import handler

    settings = get_settings()
    if settings.alerts_topic_arn is None:
        raise UsageError(
            "STOCKPIPE_ALERTS_TOPIC_ARN is not set; run `eval $(stockpipe local env)` "
            "or export the topic's ARN"
        )
    if args.create_tables:
        from core.aws import client
        from trend.tables import ensure_tables

        for name in ensure_tables(client("dynamodb", settings), settings):
            print(f"created table {name}")
    # A TrendError reaches the CLI's one handler (a StockpipeError): one line, exit 2.
    result = handler(scheduled_event(datetime.now(UTC)), _LocalContext(args.time_budget))
    print(
        f"alerts run-once: {result['symbols']} symbols, {result['rows']} new rows, "
        f"{result['crossings_sent']} crossing alerts and {result['anomaly_alerts_sent']} move "
        f"alerts sent, {result['already_sent']} already sent before, "
        f"{len(result['deferred'])} symbols deferred (another run holds an alert)"
    )
    total, remaining = result["symbols_total"], result["symbols_remaining"]
    reached = total - remaining
    if result["complete"]:
        print(f"complete: all {total} symbols reached in {result['seconds']:.1f} s")
        return 0
    print(
        f"incomplete: out of time after {result['seconds']:.1f} s, {reached} of {total} "
        f"symbols reached, {remaining} remaining; the next run resumes after "
        f"{result['resume_after']}"
    )
    return EXIT_INCOMPLETE


def run_tail(args: argparse.Namespace) -> int:
    from core.aws import client
    from core.settings import get_settings
    from trend.tail import drain

    settings = get_settings()
    if settings.alerts_queue_url is None:
        raise UsageError(
            "STOCKPIPE_ALERTS_QUEUE_URL is not set; run `eval $(stockpipe local env)` "
            "(the local stack subscribes that queue to the alerts topic)"
        )
    sqs = client("sqs", settings)
    count = 0
    for delivered in drain(sqs, settings.alerts_queue_url, follow=args.follow, keep=args.keep):
        count += 1
        print(json.dumps(delivered.raw) if args.json else delivered.describe(), flush=True)
    if not args.json:
        print(f"alerts tail: {count} alert(s)")
    return 0
