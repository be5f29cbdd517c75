"""Grouping of significant moves: at most one alert per symbol per cooldown window, every move
in exactly one alert.

The first move after a quiet period is alerted at once (someone should look now) and opens a
window of ``cooldown``. Moves inside the window are held; when it ends they go out together as
one digest, and that digest opens the next window. So two alerts of a symbol are always at
least ``cooldown`` apart and every move is counted in exactly one alert; a digest lists the
largest of its moves (trend/alerts.py ``LISTED_MOVES``) and names the query for the rest.

Everything is decided in event time (the rows' ``ts``), so the alerts - their times, contents
and keys - do not depend on when the scheduled runs happen. Time reaches the rule in two ways:
a newer row of the symbol, or the wall clock minus a settle margin (rows older than that are
assumed written), which closes a window of a symbol that has gone quiet (market close).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from trend.alerts import AnomalyAlert, Move, largest


class AnomalyState(msgspec.Struct):
    """Kept in the symbol's cursor item: bounded whatever the number of held moves (only what
    the digest shows: the largest moves, the count, the first time and the latest move)."""

    last_alert: datetime | None = None  # start of the current window (time of the last alert)
    pending: list[Move] = msgspec.field(default_factory=list)  # largest held, time order
    held: int = 0  # moves held back in the current window (pending lists the largest)
    first_held: datetime | None = None
    last_held: Move | None = None

    def __post_init__(self) -> None:
        # A cursor saved before the bound kept every held move (and no count): read it as
        # the bounded state it would have been.
        if self.pending and self.held == 0:
            moves, self.pending = self.pending, []
            for move in moves:
                self.hold(move)

    def hold(self, move: Move) -> None:
        self.pending = largest(self.pending, move)
        self.held += 1
        if self.first_held is None:
            self.first_held = move.ts
        self.last_held = move


def advance_to(
    state: AnomalyState, symbol: str, now: datetime, cooldown: timedelta
) -> AnomalyAlert | None:
    """Time has reached ``now``: close the current window if it has ended and moves wait."""
    if not state.held or state.last_alert is None:
        return None
    end = state.last_alert + cooldown
    if now < end:
        return None
    assert state.first_held is not None and state.last_held is not None
    # The digest is stamped with the window's end, not with ``now``: the same alert (and key)
    # whichever run notices the end first.
    digest = AnomalyAlert(
        symbol=symbol,
        ts=end,
        moves=tuple(state.pending),
        count=state.held,
        first_ts=state.first_held,
        last=state.last_held,
    )
    state.last_alert, state.pending, state.held = end, [], 0
    state.first_held = state.last_held = None
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
        alerts.append(AnomalyAlert.single(symbol, move))
        state.last_alert = move.ts
    else:
        state.hold(move)
    return alerts
