"""``stockpipe alerts tail``: what SNS delivered to the SQS queue subscribed to the topic,
printed for a person (subject, attributes, the SMS text and the ``default`` summary)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True, slots=True)
class Delivered:
    subject: str
    attributes: dict[str, str]
    message: str  # the ``default`` body (JSON document) as SNS delivered it
    raw: dict[str, Any]  # the whole SNS envelope

    def describe(self) -> str:
        attrs = " ".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        try:
            summary = str(json.loads(self.message).get("summary", self.message))
        except (ValueError, AttributeError):
            summary = self.message
        return f"{self.subject}\n  [{attrs}]\n  {summary}"


def parse_notification(body: str) -> Delivered:
    envelope: dict[str, Any] = json.loads(body)
    attributes = {
        name: str(value.get("Value", ""))
        for name, value in envelope.get("MessageAttributes", {}).items()
    }
    return Delivered(
        subject=str(envelope.get("Subject", "")),
        attributes=attributes,
        message=str(envelope.get("Message", "")),
        raw=envelope,
    )


def drain(
    sqs: SQSClient,
    queue_url: str,
    *,
    follow: bool = False,
    keep: bool = False,
    wait_seconds: int = 1,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[Delivered]:
    """Yield every notification on the queue; stop at the first empty poll unless ``follow``.
    Messages are deleted once yielded unless ``keep`` (then they reappear after the
    visibility timeout, as SQS does)."""
    while not stop():
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if not batch:
            if follow:
                continue
            return
        for message in batch:
            yield parse_notification(message["Body"])
        if not keep:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
