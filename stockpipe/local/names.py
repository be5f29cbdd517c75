"""Names the local stack and the resources in it share (kept apart so that creating the
resources never imports the process management)."""

from __future__ import annotations

from typing import Final

LOCAL_HOST: Final = "127.0.0.1"
REGION: Final = "us-east-1"
# moto accepts any credentials; these only keep the SDKs from looking for real ones.
FAKE_KEY_ID: Final = "testing"
FAKE_SECRET: Final = "testing"  # a placeholder moto accepts, not a secret


def alerts_topic_name(stream_name: str) -> str:
    return f"{stream_name}-alerts"
