"""Grouping of significant moves: at most one alert per symbol per cooldown window, every move
in exactly one alert.

The first move after a quiet period is alerted at once (someone should look now) and opens a
window of ``cooldown``. Moves inside the window are held; when it ends they go out together as
one digest, and that digest opens the next window. So two alerts of a symbol are always at
least ``cooldown`` apart and nothing is dropped.

Everything is decided in event time (the rows' ``ts``), so the alerts - their times, contents
and keys - do not depend on when the scheduled runs happen. Time reaches the rule in two ways:
a newer row of the symbol, or the wall clock minus a settle margin (rows older than that are
assumed written), which closes a window of a symbol that has gone quiet (market close).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from trend.alerts import AnomalyAlert, Move


class AnomalyState(msgspec.Struct):
    last_alert: datetime | None = None  # start of the current window (time of the last alert)
    pending: list[Move] = msgspec.field(default_factory=list)  # held back in that window


def advance_to(
    state: AnomalyState, symbol: str, now: datetime, cooldown: timedelta
) -> AnomalyAlert | None:
    """Time has reached ``now``: close the current window if it has ended and moves wait."""
    if not state.pending or state.last_alert is None:
        return None
    end = state.last_alert + cooldown
    if now < end:
        return None
    # The digest is stamped with the window's end, not with ``now``: the same alert (and key)
    # whichever run notices the end first.
    digest = AnomalyAlert(symbol=symbol, ts=end, moves=tuple(state.pending))
    state.last_alert, state.pending = end, []
    return digest


def observe(
    state: AnomalyState, symbol: str, move: Move, cooldown: timedelta
) -> list[AnomalyAlert]:
    """A significant move at ``move.ts``: the alerts it causes (a closed window's digest and/or
    this move alone), or none when it is held for the current window's digest."""
    alerts: list[AnomalyAlert] = []
    closed = advance_to(state, symbol, move.ts, cooldown)
    if closed is not None:
        alerts.append(closed)
    if state.last_alert is None or move.ts >= state.last_alert + cooldown:
        alerts.append(AnomalyAlert(symbol=symbol, ts=move.ts, moves=(move,)))
        state.last_alert = move.ts
    else:
        state.pending.append(move)
    return alerts
