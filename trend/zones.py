"""The exchange's time zone of a Yahoo-style symbol, derived from its suffix (no config).

A symbol without a suffix trades in New York (``AAPL``, ``BRK-B``); an index (``^GSPC``) is
taken to be a US one. Currency pairs (``EURUSD=X``) and crypto trade around the clock: UTC.
"""

from __future__ import annotations

from typing import Final
from zoneinfo import ZoneInfo

DEFAULT_ZONE: Final = "America/New_York"

# Yahoo's exchange suffixes, the common ones. Unknown suffixes fall back to New York, which
# is still correct for the many US symbols that contain a dot-free suffix-like tail.
_SUFFIX_ZONES: Final = {
    ".NS": "Asia/Kolkata",
    ".BO": "Asia/Kolkata",
    ".L": "Europe/London",
    ".IL": "Europe/London",
    ".DE": "Europe/Berlin",
    ".F": "Europe/Berlin",
    ".PA": "Europe/Paris",
    ".AS": "Europe/Amsterdam",
    ".MI": "Europe/Rome",
    ".MC": "Europe/Madrid",
    ".SW": "Europe/Zurich",
    ".ST": "Europe/Stockholm",
    ".T": "Asia/Tokyo",
    ".HK": "Asia/Hong_Kong",
    ".SS": "Asia/Shanghai",
    ".SZ": "Asia/Shanghai",
    ".KS": "Asia/Seoul",
    ".SI": "Asia/Singapore",
    ".AX": "Australia/Sydney",
    ".TO": "America/Toronto",
    ".V": "America/Toronto",
    ".SA": "America/Sao_Paulo",
    "=X": "UTC",
    "=F": "America/Chicago",  # most Yahoo futures are CME/CBOT contracts
    "-USD": "UTC",  # crypto (BTC-USD)
}


def exchange_zone_name(symbol: str) -> str:
    upper = symbol.upper()
    # Longest suffix first, so ".SS" is not mistaken for a shorter one.
    for suffix in sorted(_SUFFIX_ZONES, key=len, reverse=True):
        if upper.endswith(suffix) and len(upper) > len(suffix):
            return _SUFFIX_ZONES[suffix]
    return DEFAULT_ZONE


def exchange_zone(symbol: str) -> ZoneInfo:
    return ZoneInfo(exchange_zone_name(symbol))
