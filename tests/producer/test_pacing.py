"""Pacing by rate and by event time, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from producer.pacing import at_event_time, at_rate, until
from producer.synthetic import synthetic_ticks
from tests.producer.fakes import FakeClock


def test_rate_spaces_items_from_the_start_not_from_each_other(clock: FakeClock) -> None:
    times = []
    for _ in at_rate(range(101), 50.0, clock.sleep, clock):
        times.append(clock.now)
        clock.now += 0.001  # work per item does not slow the average
    assert abs((times[-1] - times[0]) - 2.0) < 1e-9  # 100 gaps at 50/s


def test_event_time_replay_divides_gaps_by_speed(clock: FakeClock) -> None:
    start = datetime(2024, 1, 2, tzinfo=UTC)
    ticks = [
        t
        for t, _ in zip(
            synthetic_ticks(1, 1, start=start, step=timedelta(hours=1)), range(5), strict=False
        )
    ]
    times = [clock.now for _ in at_event_time(ticks, 3600.0, clock.sleep, clock)]
    assert [round(t - times[0], 9) for t in times] == [0, 1, 2, 3, 4]


def test_until_stops_after_the_wall_time(clock: FakeClock) -> None:
    seen = []
    for i in until(range(1000), 1.0, clock):
        seen.append(i)
        clock.now += 0.1
    assert len(seen) == 10
