"""Reading jobs: what a user may see, filtered and ordered."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from jobs.ids import parse_uuid
from jobs.live import resume
from jobs.models import ADMITTABLE_STATUSES, DeadLetter, ExecutionLog, Job, Priority


def job_get(*, user: User, job_id: Any) -> Job | None:
    """The user's job with that id, or None (also for other users' jobs and bad ids)."""
    parsed = parse_uuid(job_id)
    if parsed is None:
        return None
    return Job.objects.filter(id=parsed, owner=user).prefetch_related("parent_edges").first()


def job_list(
    *,
    user: User,
    status: str | None = None,
    priority: str | None = None,
    type: str | None = None,
    scheduled: str | None = None,
) -> QuerySet[Job]:
    """The user's jobs, newest first, optionally filtered. ``scheduled`` ("true" or "false")
    keeps only the jobs waiting for their time, or only the others."""
    qs = Job.objects.filter(owner=user)
    if scheduled:
        waits_for_time = Q(status__in=ADMITTABLE_STATUSES, next_attempt_at__gt=timezone.now())
        qs = qs.filter(waits_for_time) if scheduled == "true" else qs.exclude(waits_for_time)
    if status:
        qs = qs.filter(status=status)
    if priority:
        qs = qs.filter(priority=Priority.by_name(priority))
    if type:
        qs = qs.filter(type=type)
    return qs.order_by("-created_at", "-id").prefetch_related("parent_edges")


def job_logs(*, job: Job, since: int | None = None) -> QuerySet[ExecutionLog]:
    """The job's log lines in id order; with ``since`` (a line's id, or an event's cursor)
    the ones a reader who had that line may lack: the later lines, and the lines of
    transactions still open when it was written (``jobs.live.resume``)."""
    qs = ExecutionLog.objects.filter(job=job)
    if since is not None:
        qs = qs.filter(resume.missed_since(since))
    return qs.order_by("id")


def dead_letter_list(*, type: str | None = None, reason: str | None = None) -> QuerySet[DeadLetter]:
    """Open dead letters (not yet re-driven nor discarded), newest first."""
    qs = DeadLetter.objects.filter(requeued_at__isnull=True, discarded_at__isnull=True)
    qs = qs.select_related("job")
    if type:
        qs = qs.filter(job__type=type)
    if reason:
        qs = qs.filter(reason=reason)
    return qs.order_by("-created_at", "-id").prefetch_related("job__parent_edges")
