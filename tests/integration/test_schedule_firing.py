"""Firing schedules in the scheduler's own function (``fire_due_schedules``), against the
real database: the clock is the only thing mocked, passed in as ``now``. Downtime is
simulated by putting ``next_fire_at`` in the past, as a scheduler that stopped leaves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from jobs.models import Job, JobStatus, Schedule, ScheduleFire
from jobs.schedules import services
from jobs.schedules.firing import _fire_due_time, fire_due_schedules
from jobs.schedules.output import last_runs
from tests.factories import move_to

pytestmark = pytest.mark.django_db


def schedule(owner: Any, **fields: Any) -> Schedule:
    data: dict[str, Any] = {"name": "s", "job": {"type": "noop"}, **fields}
    if "cron" not in data:
        data.setdefault("interval_seconds", 60)
    return services.schedule_create(owner=owner, data=data)


def set_next_fire(s: Schedule, when: datetime) -> None:
    Schedule.objects.filter(id=s.id).update(next_fire_at=when)


def fired_for(s: Schedule) -> list[datetime]:
    return list(
        Job.objects.filter(schedule=s)
        .order_by("scheduled_for")
        .values_list("scheduled_for", flat=True)
    )


def walk_clock(start: datetime, end: datetime, step: timedelta) -> None:
    """Run the scheduler's firing at every ``step`` from ``start`` to ``end``."""
    now = start
    while now <= end:
        fire_due_schedules(now=now)
        now += step


# --- daylight saving (Europe/Amsterdam: 2026-03-29 02:00 -> 03:00; 2026-10-25 03:00 -> 02:00)


@pytest.mark.parametrize(
    ("start", "expected_utc"),
    [
        # Spring forward: 02:30 does not exist that night; it fires once, at 03:00 CEST.
        (datetime(2026, 3, 28, 12, tzinfo=UTC), ["2026-03-29T01:00", "2026-03-30T00:30"]),
        # Fall back: 02:30 happens twice that night; it fires once, at the first (CEST).
        (datetime(2026, 10, 24, 12, tzinfo=UTC), ["2026-10-25T00:30", "2026-10-26T01:30"]),
    ],
)
def test_a_daily_0230_in_amsterdam_fires_once_on_each_night_the_clocks_move(
    user, start, expected_utc
):
    s = schedule(user, cron="30 2 * * *", timezone="Europe/Amsterdam", catchup="all")
    # The schedule as created at ``start`` (the first due time counted from then).
    from jobs.schedules import times
    from jobs.schedules.firing import timing_of

    set_next_fire(s, times.first_fire(timing_of(s), now=start))
    walk_clock(start, start + timedelta(days=2), timedelta(minutes=5))
    assert [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for t in fired_for(s)] == expected_utc


def test_an_every_30_minutes_cron_fires_on_elapsed_time_through_the_repeated_hour(user):
    s = schedule(user, cron="*/30 * * * *", timezone="Europe/Amsterdam", catchup="all")
    start = datetime(2026, 10, 24, 23, 50, tzinfo=UTC)  # 01:50 CEST
    set_next_fire(s, datetime(2026, 10, 25, 0, 0, tzinfo=UTC))
    walk_clock(start, datetime(2026, 10, 25, 2, 0, tzinfo=UTC), timedelta(minutes=5))
    # 02:00 CEST, 02:30 CEST, 02:00 CET, 02:30 CET, 03:00 CET: every real half hour.
    assert len(fired_for(s)) == 5


# --- catch-up after downtime -----------------------------------------------------------


@pytest.mark.parametrize(
    ("catchup", "limit", "fired"),
    [("none", 10, 0), ("latest", 10, 1), ("all", 10, 4), ("all", 2, 2)],
)
def test_catchup_after_the_schedulers_were_down(user, catchup, limit, fired):
    s = schedule(user, interval_seconds=3600, catchup=catchup, catchup_limit=limit)
    now = timezone.now()
    # Down for 3 h 5 min: due times at -3h05, -2h05, -1h05 and -0h05 were missed.
    set_next_fire(s, now - timedelta(hours=3, minutes=5))
    fire_due_schedules(now=now)
    due = fired_for(s)
    assert len(due) == fired
    expected = [now - timedelta(hours=h, minutes=5) for h in range(3, -1, -1)]
    assert due == expected[len(expected) - fired :]  # the most recent ones, oldest first
    # Moved on to the first due time after now, on the same grid.
    assert Schedule.objects.get(id=s.id).next_fire_at == now + timedelta(minutes=55)
    fire_due_schedules(now=now + timedelta(minutes=1))
    assert len(fired_for(s)) == fired  # nothing more until then


def test_catchup_none_still_fires_a_due_time_reached_a_little_late(user):
    s = schedule(user, interval_seconds=3600, catchup="none")
    now = timezone.now()
    set_next_fire(s, now - timedelta(seconds=5))
    fire_due_schedules(now=now)
    assert fired_for(s) == [now - timedelta(seconds=5)]


# --- overlap -------------------------------------------------------------------------------


def test_skip_fires_nothing_while_the_previous_run_is_unfinished(user):
    s = schedule(user, overlap="skip")
    t0 = Schedule.objects.get(id=s.id).next_fire_at
    fire_due_schedules(now=t0)
    (first,) = Job.objects.filter(schedule=s)
    fire_due_schedules(now=t0 + timedelta(seconds=60))  # first still pending
    assert Job.objects.filter(schedule=s).count() == 1
    move_to(first, JobStatus.COMPLETED)
    fire_due_schedules(now=t0 + timedelta(seconds=120))
    assert Job.objects.filter(schedule=s).count() == 2
    outcomes = [(r["outcome"], r["job_id"] is not None) for r in last_runs(s)]
    assert outcomes == [("fired", True), ("skipped", False), ("fired", True)]


def test_cancel_previous_cancels_the_unfinished_runs_then_fires(user):
    s = schedule(user, overlap="cancel_previous")
    t0 = Schedule.objects.get(id=s.id).next_fire_at
    fire_due_schedules(now=t0)
    waiting = Job.objects.get(schedule=s)
    fire_due_schedules(now=t0 + timedelta(seconds=60))
    assert Job.objects.get(id=waiting.id).status == JobStatus.CANCELLED
    second = Job.objects.get(schedule=s, scheduled_for=t0 + timedelta(seconds=60))
    assert second.status == JobStatus.PENDING
    move_to(second, JobStatus.RUNNING)
    fire_due_schedules(now=t0 + timedelta(seconds=120))
    running = Job.objects.get(id=second.id)
    assert running.cancel_requested  # a running one is asked to stop
    assert Job.objects.filter(schedule=s, status=JobStatus.PENDING).count() == 1


def test_allow_lets_runs_overlap(user):
    s = schedule(user, overlap="allow")
    t0 = Schedule.objects.get(id=s.id).next_fire_at
    walk_clock(t0, t0 + timedelta(seconds=120), timedelta(seconds=60))
    assert Job.objects.filter(schedule=s, status=JobStatus.PENDING).count() == 3


# --- exactly once ----------------------------------------------------------------------------


def test_a_due_time_claimed_before_fires_nothing_again(user):
    """The unique fire row is the guarantee, not the schedule's lock: a scheduler that reads a
    stale ``next_fire_at`` (or finishes after another fired) submits nothing twice."""
    s = schedule(user)
    t0 = Schedule.objects.get(id=s.id).next_fire_at
    walk_clock(t0, t0 + timedelta(seconds=120), timedelta(seconds=60))
    set_next_fire(s, t0)  # as if the last three due times were not recorded as fired
    fire_due_schedules(now=t0 + timedelta(seconds=180))
    assert fired_for(s) == [t0 + timedelta(seconds=60 * k) for k in range(4)]
    assert not _fire_due_time(Schedule.objects.get(id=s.id), t0)
    assert ScheduleFire.objects.filter(schedule=s).count() == 4


def test_the_job_records_its_schedule_and_due_time(user, api):
    s = schedule(user, job={"type": "noop", "priority": "low", "payload": {"n": 1}})
    t0 = Schedule.objects.get(id=s.id).next_fire_at
    fire_due_schedules(now=t0)
    job = Job.objects.get(schedule=s)
    body = api.get(f"/jobs/{job.id}").json()
    assert body["schedule"] == str(s.id)
    assert body["scheduled_for"] == t0.isoformat().replace("+00:00", "Z")
    assert (body["priority"], body["payload"]) == ("low", {"n": 1})
    run = api.get(f"/schedules/{s.id}").json()["last_runs"][0]
    assert (run["job_id"], run["job_status"], run["manual"]) == (str(job.id), "pending", False)


# --- start, end, pause, a template gone bad ----------------------------------------------------


def test_start_at_is_the_first_due_time_and_end_at_the_last(user):
    start = timezone.now() + timedelta(hours=1)
    s = schedule(user, interval_seconds=60, start_at=start, end_at=start + timedelta(seconds=90))
    assert Schedule.objects.get(id=s.id).next_fire_at == start
    walk_clock(start, start + timedelta(seconds=300), timedelta(seconds=30))
    assert fired_for(s) == [start, start + timedelta(seconds=60)]
    assert Schedule.objects.get(id=s.id).next_fire_at is None


def test_a_paused_schedule_fires_nothing(user):
    s = schedule(user)
    t0 = Schedule.objects.get(id=s.id).next_fire_at
    services.schedule_pause(schedule=s)
    walk_clock(t0, t0 + timedelta(seconds=120), timedelta(seconds=60))
    assert fired_for(s) == []


def test_a_template_that_no_longer_validates_records_why_and_moves_on(user):
    s = schedule(user)
    Schedule.objects.filter(id=s.id).update(job={"type": "removed_type"})
    t0 = Schedule.objects.get(id=s.id).next_fire_at
    fire_due_schedules(now=t0)
    (run,) = last_runs(s)
    assert run["outcome"] == "invalid" and "removed_type" in run["detail"]
    assert Schedule.objects.get(id=s.id).next_fire_at == t0 + timedelta(seconds=60)
    assert not Job.objects.filter(schedule=s).exists()


def test_a_schedule_that_cannot_fire_does_not_hold_up_the_others(user: Any) -> None:
    """A schedule whose firing raises (here its time zone left the tzdata, as US/Pacific-New
    did in 2020b) is looked at again a tick later; the schedules due after it still fire,
    and the scheduler's loop goes on to its sweeps (the exception used to abort every turn)."""
    broken = schedule(user, cron="* * * * *")
    Schedule.objects.filter(id=broken.id).update(timezone="Nowhere/Gone")
    fine = schedule(user, interval_seconds=60)
    now = timezone.now()
    set_next_fire(broken, now - timedelta(minutes=2))
    set_next_fire(fine, now - timedelta(minutes=1))
    fire_due_schedules(now=now)
    assert len(fired_for(fine)) == 1
    assert not Job.objects.filter(schedule=broken).exists()
    broken.refresh_from_db()
    assert broken.next_fire_at is not None and broken.next_fire_at > now
