"""A client of the running proxy's control endpoint (``/__proxy__/``), for ``stockpipe local
proxy``: counts, the fault schedule, rules on and off, the latency - without a restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from core.errors import UsageError


class ProxyControlError(UsageError):
    pass


def call(proxy_url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{proxy_url}/__proxy__/{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        # The proxy's own message names what was wrong (a rule, a field).
        error = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise ProxyControlError(f"the proxy refused {method} {path}: {error}") from None
    except OSError as exc:
        raise ProxyControlError(
            f"the proxy at {proxy_url} does not answer ({exc}); "
            "restart it with `stockpipe local up`"
        ) from None
