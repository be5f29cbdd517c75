"""Fault rules of the local proxy: what to break, when, how often, and the error bytes an AWS
SDK must see for each.

A schedule is JSON: ``{"seed": 7, "rules": [RULE, ...]}`` (or just the list). A rule::

    {"name": "ddb-throttle",        # unique; default "rule-<n>"
     "fault": "throttle",           # throttle | 500 | 503 | timeout | reset
     "service": "dynamodb",         # dynamodb | s3 | sns | sqs | ... | "*" (default)
     "operation": "BatchWriteItem", # optional: only this operation
     "probability": 0.3,            # per matching request, default 1
     "start": 10, "stop": 40,       # seconds after the schedule was loaded; stop null = never
     "hold_seconds": 30,            # timeout only: how long the request is held
     "limit": 5,                    # optional: at most this many injections
     "enabled": true}               # toggled at run time through the control endpoint

Rules are tried in order; the first active, matching rule whose draw hits is applied. Draws
come from one RNG seeded by ``seed``, so a run with the same requests in the same order injects
the same faults.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from core.errors import UsageError
from stockpipe.local.aws_request import AwsRequest

FaultKind = Literal["throttle", "500", "503", "timeout", "reset"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("throttle", "500", "503", "timeout", "reset")
_RULE_KEYS: Final = frozenset(
    {"name", "fault", "service", "operation", "probability", "start", "stop"}
    | {"hold_seconds", "limit", "enabled"}
)
_DYNAMODB_PREFIX: Final = "com.amazonaws.dynamodb.v20120810#"


class FaultConfigError(UsageError):
    """A fault schedule that cannot be used; the message names the rule and the field."""


@dataclass
class Rule:
    name: str
    fault: FaultKind
    service: str = "*"
    operation: str | None = None
    probability: float = 1.0
    start: float = 0.0
    stop: float | None = None
    hold_seconds: float = 30.0
    limit: int | None = None
    enabled: bool = True
    injected: int = field(default=0, compare=False)

    def active(self, elapsed: float) -> bool:
        return (
            self.enabled
            and self.start <= elapsed
            and (self.stop is None or elapsed < self.stop)
            and (self.limit is None or self.injected < self.limit)
        )

    def matches(self, request: AwsRequest) -> bool:
        return (self.service in {"*", request.service}) and (
            self.operation is None or self.operation == request.operation
        )

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Schedule:
    rules: list[Rule]
    seed: int = 0
    loaded_at: float = 0.0  # monotonic time the windows count from
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def decide(self, request: AwsRequest, now: float) -> Rule | None:
        elapsed = now - self.loaded_at
        for rule in self.rules:
            if not (rule.matches(request) and rule.active(elapsed)):
                continue
            # No draw at the extremes: probability 0 can never fire, 1 always does.
            if rule.probability <= 0:
                continue
            if rule.probability >= 1 or self._rng.random() < rule.probability:
                rule.injected += 1
                return rule
        return None

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def load_schedule_file(path: Path, loaded_at: float, default_seed: int = 0) -> Schedule:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FaultConfigError(
            f"fault file {str(path)!r} cannot be read ({exc.strerror})"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FaultConfigError(f"fault file {str(path)!r} is not JSON: {exc}") from None
    return parse_schedule(data, loaded_at, default_seed, where=f"fault file {str(path)!r}")


def parse_schedule(
    data: Any, loaded_at: float, default_seed: int = 0, where: str = "fault schedule"
) -> Schedule:
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
        raise FaultConfigError(
            f'{where}: expected {{"seed": N, "rules": [...]}} or a list of rules'
        )
    unknown = set(data) - {"seed", "rules"}
    if unknown:
        raise FaultConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; use seed and rules")
    seed = data.get("seed", default_seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FaultConfigError(f"{where}: seed {seed!r} is not a whole number")
    rules = [_parse_rule(raw, index, where) for index, raw in enumerate(data.get("rules", []))]
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise FaultConfigError(f"{where}: two rules are named {duplicate!r}; names must be unique")
    return Schedule(rules, seed, loaded_at)


def _parse_rule(raw: Any, index: int, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise FaultConfigError(f"{where}: rule {index} is not an object")
    name = raw.get("name", f"rule-{index}")
    here = f"{where}: rule {name!r}"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise FaultConfigError(
            f"{here}: unknown field {sorted(unknown)[0]!r}; "
            f"fields are {', '.join(sorted(_RULE_KEYS))}"
        )
    fault = str(raw.get("fault", ""))
    if fault not in FAULT_KINDS:
        raise FaultConfigError(
            f"{here}: fault {raw.get('fault')!r} is not one of {', '.join(FAULT_KINDS)}"
        )
    probability = _number(raw, "probability", 1.0, here)
    if not 0 <= probability <= 1:
        raise FaultConfigError(f"{here}: probability {probability} is not within 0..1")
    start = _number(raw, "start", 0.0, here)
    stop = None if raw.get("stop") is None else _number(raw, "stop", 0.0, here)
    if start < 0 or (stop is not None and stop <= start):
        raise FaultConfigError(f"{here}: window start={start} stop={stop} needs 0 <= start < stop")
    hold = _number(raw, "hold_seconds", 30.0, here)
    if hold <= 0:
        raise FaultConfigError(f"{here}: hold_seconds {hold} must be > 0")
    limit = raw.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise FaultConfigError(f"{here}: limit {limit!r} is not a positive whole number")
    for key in ("name", "service", "operation"):
        if key in raw and raw[key] is not None and not (isinstance(raw[key], str) and raw[key]):
            raise FaultConfigError(f"{here}: {key} {raw[key]!r} is not a non-empty string")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise FaultConfigError(f"{here}: enabled {enabled!r} is not true or false")
    return Rule(
        name=str(name),
        fault=fault,  # checked against FAULT_KINDS above
        service=str(raw.get("service", "*")).lower(),
        operation=raw.get("operation"),
        probability=probability,
        start=start,
        stop=stop,
        hold_seconds=hold,
        limit=limit,
        enabled=enabled,
    )


def _number(raw: dict[str, Any], key: str, default: float, here: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise FaultConfigError(f"{here}: {key} {value!r} is not a number")
    return float(value)


# ---- the error responses an SDK must see -------------------------------------------------

_REASONS: Final = {400: b"Bad Request", 500: b"Internal Server Error", 503: b"Service Unavailable"}


def error_response(
    kind: FaultKind, request: AwsRequest, json_protocol: bool, head_only: bool = False
) -> bytes:
    """A complete HTTP response for an error fault, in the protocol the service speaks (JSON
    ``__type`` for DynamoDB and other JSON APIs, S3's ``<Error>``, the query protocol's
    ``<ErrorResponse>``), so botocore parses the code it would get from AWS. ``head_only``: the
    answer to a HEAD request, which has no body (a client would read it as the next answer)."""
    status, code, message = _error_code(kind, request.service)
    request_id = uuid.uuid4().hex.upper()
    if request.service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        content_type = b"application/xml"
    elif json_protocol:
        prefix = _DYNAMODB_PREFIX if request.service == "dynamodb" else ""
        body = json.dumps({"__type": prefix + code, "message": message}).encode()
        content_type = b"application/x-amz-json-1.0"
    else:
        body = (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
        content_type = b"text/xml"
    return b"\r\n".join(
        [
            b"HTTP/1.1 %d %s" % (status, _REASONS[status]),
            b"Content-Type: " + content_type,
            b"Content-Length: " + str(len(body)).encode(),
            b"x-amzn-RequestId: " + request_id.encode(),
            b"x-stockpipe-fault: " + kind.encode(),
            b"",
            b"" if head_only else body,
        ]
    )


def _error_code(kind: FaultKind, service: str) -> tuple[int, str, str]:
    injected = "injected by the stockpipe local proxy"
    if kind == "throttle":
        if service == "dynamodb":
            return (
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded "
                f"({injected})",
            )
        if service == "s3":
            return 503, "SlowDown", f"Please reduce your request rate ({injected})"
        return 400, "ThrottlingException", f"Rate exceeded ({injected})"
    if kind == "500":
        code = {"dynamodb": "InternalServerError", "s3": "InternalError"}.get(
            service, "InternalFailure"
        )
        return 500, code, f"Internal server error ({injected})"
    if kind == "503":
        return 503, "ServiceUnavailable", f"Service unavailable ({injected})"
    raise ValueError(f"{kind} is not an error-response fault")
