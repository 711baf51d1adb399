"""Firing schedules: what ``manage.py scheduler`` runs between its sweeps.

Each due time fires exactly once, however many schedulers run and wherever one is killed.
A scheduler locks one due schedule at a time (``LOCK_DUE_SCHEDULE``, SKIP LOCKED, so two
schedulers share the work), and in that one transaction claims each due time
(``CLAIM_DUE_TIME``: a unique row per schedule and due time, ``ON CONFLICT DO NOTHING``),
submits its job, and moves ``next_fire_at`` past ``now``. A scheduler killed midway commits
none of it: the next one finds the same due times and fires them. The lock only spares the
work; the unique row is the guarantee, so a scheduler that got the schedule on a stale
``next_fire_at`` still fires nothing twice.

Which due times fire after downtime is the schedule's ``catchup`` (``times.due_times``); what
a due time does while the previous run is unfinished is its ``overlap``.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import Error as DBError
from django.db import connection, transaction
from django.utils import timezone

from jobs.api.submit import job_submit
from jobs.engine import prepared
from jobs.engine.cancel import job_cancel
from jobs.errors import JobConflict
from jobs.models import Job, JobStatus
from jobs.schedules import statements, times
from jobs.schedules.models import FireOutcome, Overlap, Schedule
from jobs.schedules.serializers import JobTemplateSerializer

logger = logging.getLogger("draconic.scheduler")

#: Schedules one call fires at most, so the sweeps between calls are not held up.
SCHEDULES_PER_CALL = 100
#: The shortest wait: a schedule due now that another scheduler is firing (its row locked) is
#: looked at again this soon, not in a busy loop.
MIN_WAIT_SECONDS = 0.05
UNFINISHED = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)


def fire_due_schedules(*, now: datetime | None = None) -> float:
    """Fire every due time that has come (``now``, the clock's by default), one schedule per
    transaction. Returns the seconds until the next due time, at most one scheduler tick (the
    loop looks again then), 0 when schedules are left for another call."""
    for _ in range(SCHEDULES_PER_CALL):
        moment = now or timezone.now()
        with transaction.atomic():
            schedule = _lock_due_schedule(moment)
            if schedule is None:
                return seconds_until_next_fire(now=moment)
            _fire_or_defer(schedule, now=moment)
    return 0.0


def _fire_or_defer(schedule: Schedule, *, now: datetime) -> None:
    """Fire a locked schedule. If that raises for this schedule (a bug, or a time zone the
    tzdata dropped), log it and look at it again a tick later: the schedule due first would
    otherwise be picked, and fail, on every call, and no schedule after it would fire. The
    database failing is not the schedule's fault: that propagates, as everywhere."""
    try:
        with transaction.atomic():  # a savepoint: the fire's half-done work goes
            fire_schedule(schedule, now=now)
    except DBError:
        raise
    except Exception:
        logger.exception("schedule %s could not fire; trying it again in a tick", schedule.id)
        later = now + timedelta(seconds=settings.DRACONIC_SCHEDULER_TICK_SECONDS)
        parameters = {"schedule_id": str(schedule.id), "next_fire_at": later}
        with connection.cursor() as cursor:
            prepared.execute(cursor, (statements.ADVANCE_SCHEDULE, parameters))


def seconds_until_next_fire(*, now: datetime) -> float:
    """Seconds from ``now`` to the soonest due time, within ``[MIN_WAIT_SECONDS, tick]``."""
    tick = float(settings.DRACONIC_SCHEDULER_TICK_SECONDS)
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.NEXT_FIRE_AT, {}))
        soonest: datetime | None = prepared.rows(cursor)[0]["next_fire_at"]
    if soonest is None:
        return tick
    return min(tick, max(MIN_WAIT_SECONDS, (soonest - now).total_seconds()))


def _lock_due_schedule(now: datetime) -> Schedule | None:
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.LOCK_DUE_SCHEDULE, {"now": now}))
        found = prepared.rows(cursor)
    return Schedule.objects.select_related("owner").get(id=found[0]["id"]) if found else None


def fire_schedule(schedule: Schedule, *, now: datetime) -> int:
    """Fire the due times of a schedule locked by this transaction that its catch-up policy
    keeps, and move it on to its first due time after ``now``. Returns how many it claimed."""
    timing = timing_of(schedule)
    since = schedule.next_fire_at or now  # never None: LOCK_DUE_SCHEDULE picks only those
    due = times.due_times(
        timing,
        since=since,
        now=now,
        catchup=schedule.catchup,
        limit=schedule.catchup_limit,
        grace=timedelta(seconds=settings.DRACONIC_SCHEDULE_GRACE_SECONDS),
    )
    claimed = sum(_fire_due_time(schedule, due_at) for due_at in due)
    upcoming = times.fires_after(timing, now, count=1, grid=since)
    parameters = {
        "schedule_id": str(schedule.id),
        "next_fire_at": upcoming[0] if upcoming else None,
    }
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.ADVANCE_SCHEDULE, parameters))
    return claimed


def _fire_due_time(schedule: Schedule, due_at: datetime) -> bool:
    """Claim one due time and do what it calls for; False if it was claimed before."""
    unfinished = list(Job.objects.filter(schedule_id=schedule.id, status__in=UNFINISHED))
    skip = bool(unfinished) and schedule.overlap == Overlap.SKIP
    spec, problem = _spec(schedule, due_at)
    outcome = FireOutcome.SKIPPED if skip else FireOutcome.INVALID if problem else FireOutcome.FIRED
    detail = "the previous run is unfinished" if skip else problem
    claim = {
        "schedule_id": str(schedule.id),
        "due_at": due_at,
        "outcome": outcome,
        "detail": detail,
    }
    with connection.cursor() as cursor:
        prepared.execute(cursor, (statements.CLAIM_DUE_TIME, claim))
        claimed = prepared.rows(cursor)
    if not claimed or outcome != FireOutcome.FIRED:
        return bool(claimed)
    if schedule.overlap == Overlap.CANCEL_PREVIOUS:
        _cancel(unfinished, due_at)
    _submit(schedule, spec, fire_id=claimed[0]["id"])
    return True


def fire_now(schedule: Schedule, *, now: datetime) -> Job:
    """Fire a schedule at once (POST /schedules/{id}/trigger), whatever its overlap policy
    and pause say: a person asked. Raises JobConflict if its template no longer validates."""
    spec, problem = _spec(schedule, now)
    if problem:
        raise JobConflict(f"the schedule's job template is no longer valid: {problem}")
    with transaction.atomic():
        parameters = {
            "schedule_id": str(schedule.id),
            "due_at": now,
            "outcome": FireOutcome.FIRED,
            "detail": "triggered",
        }
        with connection.cursor() as cursor:
            prepared.execute(cursor, (statements.INSERT_MANUAL_FIRE, parameters))
            fire_id = prepared.rows(cursor)[0]["id"]
        return _submit(schedule, spec, fire_id=fire_id)


def _spec(schedule: Schedule, due_at: datetime) -> tuple[Any, str]:
    """The job spec of one fire, validated again (a job type may have gone since the save),
    or the problem that makes it invalid."""
    template = JobTemplateSerializer(data=schedule.job)
    if not template.is_valid():
        return None, f"job: {template.errors}"
    spec = template.to_spec()
    spec.schedule_id = schedule.id
    spec.scheduled_for = due_at
    return spec, ""


def _submit(schedule: Schedule, spec: Any, *, fire_id: int) -> Job:
    owner: User = schedule.owner
    job, _ = job_submit(owner=owner, spec=spec)
    with connection.cursor() as cursor:
        prepared.execute(
            cursor, (statements.SET_FIRE_JOB, {"job_id": str(job.id), "fire_id": fire_id})
        )
    return job


def _cancel(jobs: list[Job], due_at: datetime) -> None:
    for job in jobs:
        with contextlib.suppress(JobConflict):  # it finished meanwhile
            job_cancel(
                job=job, reason=f"cancelled: its schedule fired again, for {due_at.isoformat()}"
            )


def timing_of(schedule: Schedule) -> times.Timing:
    seconds = schedule.interval_seconds
    return times.Timing(
        cron=schedule.cron,
        interval=timedelta(seconds=seconds) if seconds else None,
        timezone=schedule.timezone,
        start_at=schedule.start_at,
        end_at=schedule.end_at,
    )
