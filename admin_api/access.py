"""Who may see and do what in the console and the staff API: one rule, in one place.

- **Operators** (``is_staff``) see everything and may act on everything.
- **Viewers** (holding ``admin_api.view_everything``: an on-call viewer) see everything and
  may change nothing. The permission makes a user read-only whether or not they are staff
  (a staff member given it is a read-only staff user); a superuser, who implicitly holds
  every permission, stays an operator.
- **Everyone else** sees their own jobs and may act on their own jobs only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission

from jobs.models import Job

VIEW_EVERYTHING = "admin_api.view_everything"


def is_viewer(user: Any) -> bool:
    """Read-only: holds ``view_everything`` (staff or not), and is no superuser."""
    return bool(user.is_authenticated and not user.is_superuser and user.has_perm(VIEW_EVERYTHING))


def is_operator(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff and not is_viewer(user))


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


class StaffApiPermission(BasePermission):
    """The staff REST API (``/admin/...``): staff read it; only operators change anything
    through it (a read-only staff user's POST, PATCH or DELETE is a 403)."""

    message = "only operators may change this; read-only staff and on-call viewers may not"

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        return request.method in SAFE_METHODS or is_operator(user)


#: The 403 a viewer's write to the public API answers.
READ_ONLY_ACCOUNT = (
    "this account is read-only (it holds admin_api.view_everything, an on-call viewer): "
    "it may read everything and change nothing"
)


class ViewersReadOnly(BasePermission):
    """The public API (``/jobs/``, ``/schedules/``): a viewer reads, and every ``POST``,
    ``PUT``, ``PATCH`` or ``DELETE`` of theirs is a 403, their own jobs and schedules
    included. One of the API's default permission classes (settings), so a new write view
    is covered without remembering to list it."""

    message = READ_ONLY_ACCOUNT

    def has_permission(self, request: Any, view: Any) -> bool:
        return request.method in SAFE_METHODS or not is_viewer(request.user)
