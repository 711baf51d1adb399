"""Schedules fired by real scheduler processes: two of them at once, one SIGKILLed in the
middle of a fire. Every due time ends with exactly one job. Timeouts are hang guards only."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone

from jobs.models import Job, Schedule, ScheduleFire
from jobs.schedules import services
from tests.harness import process_env, scheduler_argv, wait_until

pytestmark = pytest.mark.e2e

# The backend of a scheduler in the middle of a fire: it has claimed a due time (its fire row
# is inserted, not committed) and waits for a lock: the job insert, which the test holds back.
MID_FIRE = """
SELECT a.application_name FROM pg_stat_activity AS a JOIN pg_locks AS l ON l.pid = a.pid
WHERE l.relation = 'jobs_schedulefire'::regclass AND l.mode = 'RowExclusiveLock'
  AND l.granted AND a.wait_event_type = 'Lock' AND a.application_name LIKE 'scheduler-%'
"""


def raw_connection() -> Any:
    db = connection.settings_dict
    return psycopg2.connect(
        dbname=db["NAME"],
        user=db["USER"] or "postgres",
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
    )


def start_schedulers(platform: Any, *names: str) -> None:
    for name in names:
        url = process_env()["DATABASE_URL"] + f"?application_name={name}"
        platform.start_scheduler(name, DATABASE_URL=url)


def test_two_schedulers_one_killed_mid_fire_fire_each_due_time_exactly_once(platform, user):
    schedule = services.schedule_create(
        owner=user,
        data={
            "name": "every second",
            "interval_seconds": 1,
            "catchup": "all",
            "catchup_limit": 1000,
            "job": {"type": "noop"},
        },
    )
    start_schedulers(platform, "scheduler-a", "scheduler-b")
    wait_until(
        lambda: Job.objects.filter(schedule=schedule).count() >= 3,
        timeout=90,
        message=platform.logs(),
    )

    # Hold every job insert back, catch one scheduler between its claim and its job, kill it.
    blocker, watcher = raw_connection(), raw_connection()
    watcher.autocommit = True  # each look at pg_stat_activity is a fresh snapshot
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLE jobs_job IN SHARE MODE")
            victim = wait_until(lambda: _mid_fire(watcher), timeout=60, message=platform.logs())
            cursor.execute("SELECT next_fire_at FROM jobs_schedule WHERE id = %s", [schedule.id])
            (interrupted,) = cursor.fetchone()
            platform.kill(victim)
    finally:
        blocker.rollback()  # the victim's backend finishes its insert, finds its client gone
        blocker.close()  # and rolls back: none of its fire is committed
        watcher.close()

    # The survivor fires the interrupted due time; then both run again for a while.
    wait_until(
        lambda: Job.objects.filter(schedule=schedule, scheduled_for=interrupted).exists(),
        timeout=60,
        message=platform.logs(),
    )
    platform.restart(victim)
    fired = Job.objects.filter(schedule=schedule).count()
    wait_until(
        lambda: Job.objects.filter(schedule=schedule).count() >= fired + 4,
        timeout=90,
        message=platform.logs(),
    )
    platform.stop_all()

    due = list(Job.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True))
    assert [t for t, n in Counter(due).items() if n > 1] == []  # no due time fired twice
    first, last = min(due), max(due)
    every = [first + timedelta(seconds=k) for k in range(int((last - first).total_seconds()) + 1)]
    assert sorted(due) == every  # and none missed (catch-up "all")
    fires = ScheduleFire.objects.filter(schedule=schedule)
    assert fires.count() == len(due) and not fires.filter(job__isnull=True).exists()
    assert Schedule.objects.get(id=schedule.id).next_fire_at > last


def _mid_fire(watcher: Any) -> str | None:
    with watcher.cursor() as cursor:
        cursor.execute(MID_FIRE)
        row = cursor.fetchone()
    return row[0] if row else None


def test_the_scheduler_sleeps_until_the_next_due_time_not_until_its_tick(platform, user):
    """With a tick of 20 s a schedule every 2 s still fires each due time as it comes: the
    loop sleeps until the next due time. (Fired only at the ticks, with catch-up "all", the
    due times between two ticks would fire up to 20 s late.)"""
    platform.start_scheduler(DRACONIC_SCHEDULER_TICK_SECONDS="20")
    wait_until(
        lambda: "scheduler started" in platform.log_tail("scheduler"),
        timeout=60,
        message=platform.logs(),
    )
    schedule = services.schedule_create(
        owner=user,
        data={
            "name": "every 2 s",
            "interval_seconds": 2,
            "catchup": "all",
            "job": {"type": "noop"},
        },
    )
    wait_until(
        lambda: Job.objects.filter(schedule=schedule).count() >= 4,
        timeout=120,
        message=platform.logs(),
    )
    lateness = [
        (job.created_at - job.scheduled_for).total_seconds()
        for job in Job.objects.filter(schedule=schedule)
    ]
    assert max(lateness) < 5, lateness  # a quarter of a tick: generous for a noisy machine


def test_each_catchup_policy_after_the_schedulers_were_down(platform, user):
    """Hourly schedules last fired before a downtime of 3 h 5 min (``next_fire_at`` left where
    a stopped scheduler leaves it); then one real scheduler tick (``scheduler --once``)."""
    policies = {("none", 10): 0, ("latest", 10): 1, ("all", 10): 4, ("all", 2): 2}
    schedules = {}
    for catchup, limit in policies:
        schedules[catchup, limit] = services.schedule_create(
            owner=user,
            data={
                "name": f"{catchup} {limit}",
                "interval_seconds": 3600,
                "catchup": catchup,
                "catchup_limit": limit,
                "job": {"type": "noop"},
            },
        )
    down_since = timezone.now() - timedelta(hours=3, minutes=5)
    Schedule.objects.update(next_fire_at=down_since)
    proc = platform.start("once", [*scheduler_argv(), "--once"])
    assert proc.wait(timeout=120) == 0, platform.logs()
    for key, expected in policies.items():
        due = sorted(
            Job.objects.filter(schedule=schedules[key]).values_list("scheduled_for", flat=True)
        )
        every = [down_since + timedelta(hours=h) for h in range(4)]
        assert due == every[len(every) - expected :], key  # the most recent ones, once each
        upcoming = Schedule.objects.get(id=schedules[key].id).next_fire_at
        assert upcoming == down_since + timedelta(hours=4)  # on its grid, after now
