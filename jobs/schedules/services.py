"""Changing schedules: what the API and the admin call. Every change that moves a schedule's
next due time wakes the scheduler after the commit, so it sleeps until the new time."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from jobs.engine import wakeup
from jobs.models import Job
from jobs.schedules import firing, times
from jobs.schedules.models import Schedule

#: The fields whose change moves the schedule's due times.
TIMING_FIELDS = frozenset({"cron", "interval_seconds", "timezone", "start_at", "end_at"})


def schedule_create(*, owner: User, data: dict[str, Any]) -> Schedule:
    """Store a schedule from validated input; its first due time is counted from now."""
    return schedule_save(schedule=Schedule(owner=owner, **_columns(data)), timing_changed=True)


def schedule_save(*, schedule: Schedule, timing_changed: bool) -> Schedule:
    """Save a validated schedule (new, or edited in the admin). When it is new or its timing
    changed, its next due time is counted again from now."""
    if (timing_changed or schedule._state.adding) and not schedule.paused:
        schedule.next_fire_at = times.first_fire(firing.timing_of(schedule), now=timezone.now())
    with transaction.atomic():
        schedule.save()
        transaction.on_commit(wakeup.request_schedule_check)
    return schedule


def schedule_update(*, schedule: Schedule, data: dict[str, Any]) -> Schedule:
    """Apply validated changes (the whole schedule was validated with them). A change of its
    timing counts its next due time again from now; others keep it."""
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(id=schedule.id)
        columns = _columns(data)
        for name, value in columns.items():
            setattr(locked, name, value)
        if TIMING_FIELDS & columns.keys() and not locked.paused:
            locked.next_fire_at = times.first_fire(firing.timing_of(locked), now=timezone.now())
        locked.save()
        transaction.on_commit(wakeup.request_schedule_check)
    return locked


def schedule_delete(*, schedule: Schedule) -> None:
    """Delete a schedule and its fire rows; the jobs it fired stay (their ``schedule`` empty)."""
    schedule.delete()


def schedule_pause(*, schedule: Schedule) -> Schedule:
    """Stop firing; due times while paused are never fired. Pausing a paused one changes
    nothing."""
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(id=schedule.id)
        locked.paused, locked.next_fire_at = True, None
        locked.save(update_fields=["paused", "next_fire_at", "updated_at"])
    return locked


def schedule_resume(*, schedule: Schedule) -> Schedule:
    """Fire again, from now on: the first due time is counted as at creation (one interval
    from now, or the cron's next time). Resuming a running one changes nothing."""
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(id=schedule.id)
        if locked.paused:
            locked.paused = False
            locked.next_fire_at = times.first_fire(firing.timing_of(locked), now=timezone.now())
            locked.save(update_fields=["paused", "next_fire_at", "updated_at"])
            transaction.on_commit(wakeup.request_schedule_check)
    return locked


def schedule_trigger(*, schedule: Schedule) -> Job:
    """Fire the schedule now, once, outside its due times; returns the job."""
    return firing.fire_now(schedule, now=timezone.now())


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    """Validated input as model columns (an absent cron is the empty string)."""
    columns = dict(data)
    if "cron" in columns:
        columns["cron"] = columns["cron"] or ""
    return columns
