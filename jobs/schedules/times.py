"""When a schedule is due: pure functions of the schedule's timing and a ``now`` passed in
(no clock, no database), so the tests can walk a daylight-saving night with a fixed clock.

Cron expressions are standard 5-field ones, read by cronsim in the schedule's IANA time zone.
Across daylight-saving changes cronsim follows Debian's cron, which is the rule documented:

- An expression at a fixed time of day (its minute and hour fields are not ``*``-based, say
  ``30 2 * * *``) is matched on the wall clock. When the clocks jump forward and skip that
  time, it fires once at the first minute after the gap (02:30 in Europe/Amsterdam on the last
  Sunday of March fires at 03:00 CEST). When they fall back and that time occurs twice, it
  fires once, at the first occurrence (02:30 CEST, not again at 02:30 CET).
- An expression whose minute or hour field starts with ``*`` (``*/15 * * * *``,
  ``0 * * * *``...) is matched on elapsed time: it fires at every real instant that matches,
  so the repeated hour fires twice and the skipped hour not at all.

Interval schedules ignore the time zone: due times are ``interval_seconds`` apart in real time,
counted from the first due time (``start_at``, or one interval after the schedule was created
or resumed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

#: The furthest a cron search looks, past or future, before it says "never" (cronsim
#: itself gives up after 50 years).
SEARCH_LIMIT = 10_000


@dataclass(frozen=True)
class Timing:
    """What decides a schedule's due times. Exactly one of ``cron`` and ``interval``."""

    cron: str = ""
    interval: timedelta | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a standard 5-field cron expression cronsim can read, or None."""
    if len(expression.split()) != 5:
        return "must have 5 fields (minute hour day-of-month month day-of-week)"
    try:
        next(CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC)))
    except (CronSimError, StopIteration) as exc:
        return f"is not a valid cron expression: {exc or 'it never matches'}"
    return None


def first_fire(timing: Timing, *, now: datetime) -> datetime | None:
    """The first due time of a schedule created (or resumed) at ``now``: ``start_at`` when it is
    later, else one interval after ``now``, or the cron's first time after ``now``; None when
    that is past ``end_at``."""
    if timing.interval is not None:
        if timing.start_at is not None and timing.start_at > now:
            first = timing.start_at
        else:
            first = now + timing.interval
        return _within_end(timing, first)
    after = now if timing.start_at is None else max(now, timing.start_at - timedelta(seconds=1))
    return next(iter(_cron_forward(timing, after)), None)


def fires_after(timing: Timing, after: datetime, *, count: int, grid: datetime) -> list[datetime]:
    """The next ``count`` due times strictly after ``after`` (fewer past ``end_at``). ``grid``
    is a due time the schedule had (its ``next_fire_at``): interval times are steps of it."""
    if timing.interval is not None:
        step = timing.interval
        first = grid if grid > after else grid + step * ((after - grid) // step + 1)
        times = (first + step * k for k in range(count))
        return [t for t in times if _within_end(timing, t) is not None]
    found: list[datetime] = []
    for when in _cron_forward(timing, after):
        found.append(when)
        if len(found) == count:
            break
    return found


def fires_between(
    timing: Timing, since: datetime, until: datetime, *, limit: int
) -> list[datetime]:
    """The latest ``limit`` due times in ``[since, until]``, oldest first. ``since`` is a due
    time of the schedule (its ``next_fire_at``), so interval times are steps from it."""
    if timing.end_at is not None:
        until = min(until, timing.end_at)
    if until < since or limit < 1:
        return []
    if timing.interval is not None:
        last = (until - since) // timing.interval
        return [since + timing.interval * k for k in range(max(0, last - limit + 1), last + 1)]
    found: list[datetime] = []
    for when in _cron_backward(timing, until):
        if when < since or len(found) == limit:
            break
        found.append(when)
    return found[::-1]


def due_times(
    timing: Timing,
    *,
    since: datetime,
    now: datetime,
    catchup: str,
    limit: int,
    grace: timedelta,
) -> list[datetime]:
    """The due times in ``[since, now]`` to fire now, oldest first, by the catch-up policy:
    ``all`` the latest ``limit`` of them, ``latest`` the last one, ``none`` the last one only
    if it is at most ``grace`` old (a scheduler a little late is not downtime). The others
    were missed and are dropped."""
    if catchup == "all":
        return fires_between(timing, since, now, limit=limit)
    last = fires_between(timing, since, now, limit=1)
    if catchup == "none":
        return [t for t in last if now - t <= grace]
    return last


def _within_end(timing: Timing, when: datetime) -> datetime | None:
    return when if timing.end_at is None or when <= timing.end_at else None


def _cron_forward(timing: Timing, after: datetime) -> Iterator[datetime]:
    """Cron due times strictly after ``after``, in UTC, up to ``end_at``."""
    zone = ZoneInfo(timing.timezone)
    for n, when in enumerate(CronSim(timing.cron, after.astimezone(zone))):
        utc = when.astimezone(UTC)
        if n >= SEARCH_LIMIT or _within_end(timing, utc) is None:
            return
        if utc > after:  # cronsim drops microseconds first
            yield utc


def _cron_backward(timing: Timing, until: datetime) -> Iterator[datetime]:
    """Cron due times at or before ``until``, newest first, in UTC, not before ``start_at``."""
    zone = ZoneInfo(timing.timezone)
    # cronsim's reverse iteration yields times strictly before its start: start one second on.
    start = until.replace(microsecond=0) + timedelta(seconds=1)
    for n, when in enumerate(CronSim(timing.cron, start.astimezone(zone), reverse=True)):
        utc = when.astimezone(UTC)
        if n >= SEARCH_LIMIT or (timing.start_at is not None and utc < timing.start_at):
            return
        if utc <= until:
            yield utc
