"""The deploy package's errors: a bad context value stops the synth with one line."""

from __future__ import annotations

from core.errors import StockpipeError


class DeployError(StockpipeError):
    """Base class of the CDK app's errors."""


class ContextError(DeployError):
    """A ``-c name=value`` (or cdk.json context) value the app cannot use."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        super().__init__(f"context {name}={value!r} is not valid: expected {expected}")
        self.name = name
        self.value = value
        self.expected = expected
