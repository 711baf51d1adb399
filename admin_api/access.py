"""Who may see and do what in the console and the staff API: one rule, in one place.

- **Operators** (``is_staff``) see everything and may act on everything.
- **Viewers** (not staff, holding ``admin_api.view_everything``: an on-call viewer) see
  everything and may change nothing.
- **Everyone else** sees their own jobs and may act on their own jobs only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from jobs.models import Job

VIEW_EVERYTHING = "admin_api.view_everything"


def is_operator(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def is_viewer(user: Any) -> bool:
    return bool(user.is_authenticated and not user.is_staff and user.has_perm(VIEW_EVERYTHING))


def sees_everything(user: Any) -> bool:
    """May see every job and every operator page (queues, workers, limits, audit)."""
    return is_operator(user) or is_viewer(user)


def visible_jobs(user: Any) -> QuerySet[Job]:
    return Job.objects.all() if sees_everything(user) else Job.objects.filter(owner=user)


def actionable_jobs(user: Any) -> QuerySet[Job]:
    """The jobs ``user`` may cancel, retry or re-drive: all for operators, their own for
    ordinary users, none for viewers."""
    if is_operator(user):
        return Job.objects.all()
    if is_viewer(user) or not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(owner=user)


def may_act_on(user: Any, job: Job) -> bool:
    if is_operator(user):
        return True
    return not is_viewer(user) and user.is_authenticated and job.owner_id == user.id


def may_operate(user: Any) -> bool:
    """May change what is not one's own job: pause a type or priority, quiet a worker,
    re-drive or discard dead letters of others, trigger or pause any schedule."""
    return is_operator(user)
