"""``/dashboard/schedules/``: the schedules with their next fire and last outcome, and the
limit rules with their current use; pause, resume or trigger a schedule from the page.

Each action is a confirmation page (GET, saying what it will touch) whose form POSTs (CSRF
checked) to the same URL; the change goes through ``jobs.schedules.services`` and is audited
(``admin_api.audit.record``) in the change's transaction. Who: operators see and act on every
schedule; on-call viewers see every schedule and act on none; everyone else sees and acts on
their own. The page reads a constant number of queries (the schedules panel's two, the
limits' one; the limits' use comes from Redis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from admin_api import access, audit, dashboard_panels
from jobs.errors import JobConflict
from jobs.schedules import services
from jobs.schedules.models import Schedule


def may_act_on_schedule(user: Any, schedule: Schedule) -> bool:
    """Operators act on every schedule, owners on theirs (not viewers, even their own)."""
    if access.may_operate(user):
        return True
    return bool(
        user.is_authenticated and not access.is_viewer(user) and schedule.owner_id == user.id
    )


@login_required
@require_GET
def schedules_view(request: HttpRequest) -> HttpResponse:
    rows = dashboard_panels.schedule_rows(request.user)
    for row in rows:
        row["may_act"] = may_act_on_schedule(request.user, row["schedule"])
    sees_all = access.sees_everything(request.user)
    context = {
        "schedules": rows,
        "shown": dashboard_panels.SCHEDULE_ROWS,
        "limits": dashboard_panels.limit_rows() if sees_all else None,
    }
    return render(request, "dashboard/schedules.html", context)


def _pause(request: HttpRequest, schedule: Schedule) -> str:
    services.schedule_pause(schedule=schedule)
    audit.record(request.user, "schedule.pause", _target(schedule), count=1)
    return f"Paused schedule {schedule.name}: it fires no more until resumed."


def _resume(request: HttpRequest, schedule: Schedule) -> str:
    resumed = services.schedule_resume(schedule=schedule)
    audit.record(request.user, "schedule.resume", _target(schedule), count=1)
    when = resumed.next_fire_at.strftime("%Y-%m-%d %H:%M:%S UTC") if resumed.next_fire_at else "—"
    return f"Resumed schedule {schedule.name}: next fire {when}."


def _trigger(request: HttpRequest, schedule: Schedule) -> str:
    job = services.schedule_trigger(schedule=schedule)
    audit.record(request.user, "schedule.trigger", _target(schedule), job_ids=[job.id], count=1)
    return f"Triggered schedule {schedule.name}: submitted job {job.id}."


#: action -> (what the confirmation asks, what it does)
ACTIONS: dict[str, tuple[str, Callable[[HttpRequest, Schedule], str]]] = {
    "pause": ("Pause", _pause),
    "resume": ("Resume", _resume),
    "trigger": ("Trigger now (submits 1 job)", _trigger),
}


def _target(schedule: Schedule) -> str:
    return f"schedule {schedule.name} ({schedule.id})"


@login_required
@require_http_methods(["GET", "POST"])
def schedule_action_view(request: HttpRequest, schedule_id: UUID, action: str) -> HttpResponse:
    """GET: the confirmation; POST: the action, then back to the list with its message."""
    if action not in ACTIONS:
        raise Http404(action)
    schedule = dashboard_panels.visible_schedules(request.user).filter(id=schedule_id).first()
    if schedule is None:
        raise Http404("no such schedule among those you may see")
    if not may_act_on_schedule(request.user, schedule):
        raise PermissionDenied("you may not change this schedule")
    label, act = ACTIONS[action]
    if request.method == "GET":
        context = {"schedule": schedule, "action": action, "label": label}
        return render(request, "dashboard/schedule_confirm.html", context)
    try:
        with transaction.atomic():
            messages.success(request, act(request, schedule))
    except JobConflict as exc:
        messages.error(request, f"Could not {action} schedule {schedule.name}: {exc}")
    return redirect("dashboard-schedules")


urlpatterns = [
    path("schedules/", schedules_view, name="dashboard-schedules"),
    path(
        "schedules/<uuid:schedule_id>/<str:action>/",
        schedule_action_view,
        name="dashboard-schedule-action",
    ),
]
