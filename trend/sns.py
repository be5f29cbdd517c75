"""Publishing an alert to the SNS topic (email, SMS and machine subscribers at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trend.messages import AlertMessage

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class SnsPublisher:
    def __init__(self, sns: SNSClient, topic_arn: str) -> None:
        self._sns, self._topic_arn = sns, topic_arn

    def publish(self, message: AlertMessage) -> str:
        response = self._sns.publish(
            TopicArn=self._topic_arn,
            Message=message.sns_message(),
            MessageStructure="json",
            Subject=message.subject,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in message.attributes.items()
            },
        )
        return response["MessageId"]
