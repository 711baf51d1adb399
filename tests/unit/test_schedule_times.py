"""The pure fire-time functions (``jobs.schedules.times``): the clock is a parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.schedules.times import Timing, cron_problem, due_times, fires_after, fires_between

AMS = ZoneInfo("Europe/Amsterdam")
NIGHTLY = Timing(cron="30 2 * * *", timezone="Europe/Amsterdam")


def local(times: list[datetime]) -> list[str]:
    return [t.astimezone(AMS).isoformat() for t in times]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (
            datetime(2026, 3, 28, 12, tzinfo=UTC),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
        (
            datetime(2026, 10, 24, 12, tzinfo=UTC),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
    ],
)
def test_a_fixed_time_cron_fires_once_on_the_nights_the_clocks_move(after, expected):
    assert local(fires_after(NIGHTLY, after, count=2, grid=after)) == expected
    # Looking back over the same two nights finds the same two times.
    until = after + timedelta(days=2)
    assert local(fires_between(NIGHTLY, after, until, limit=10)) == expected


def test_a_wildcard_hour_cron_follows_elapsed_time_through_the_repeated_hour():
    timing = Timing(cron="0 * * * *", timezone="Europe/Amsterdam")
    after = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)  # 01:30 CEST
    assert local(fires_after(timing, after, count=3, grid=after)) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_interval_times_are_steps_from_the_grid():
    grid = datetime(2026, 1, 1, tzinfo=UTC)
    timing = Timing(interval=timedelta(seconds=10), end_at=grid + timedelta(seconds=45))
    assert fires_after(timing, grid + timedelta(seconds=25), count=5, grid=grid) == [
        grid + timedelta(seconds=30),
        grid + timedelta(seconds=40),
    ]
    assert fires_between(timing, grid, grid + timedelta(seconds=100), limit=2) == [
        grid + timedelta(seconds=30),
        grid + timedelta(seconds=40),
    ]


@pytest.mark.parametrize(
    ("catchup", "limit", "count"),
    [("none", 5, 0), ("latest", 5, 1), ("all", 5, 5), ("all", 100, 7)],
)
def test_due_times_by_catchup_policy(catchup, limit, count):
    since = datetime(2026, 1, 1, tzinfo=UTC)
    hourly = Timing(interval=timedelta(hours=1))
    now = since + timedelta(hours=6, minutes=30)  # 7 due times, the last 30 minutes old
    found = due_times(
        hourly, since=since, now=now, catchup=catchup, limit=limit, grace=timedelta(minutes=1)
    )
    assert len(found) == count
    assert found == sorted(found) and (not found or found[-1] == since + timedelta(hours=6))


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", "5 fields"),
        ("0 0 * * * *", "5 fields"),
        ("60 * * * *", "not a valid cron expression"),
        ("0 0 31 2 *", "not a valid cron expression"),
        ("0 9 * * MON-FRI", None),
    ],
)
def test_cron_problem(expression, problem):
    found = cron_problem(expression)
    assert (found is None) if problem is None else (problem in (found or ""))
