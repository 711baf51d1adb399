"""``/dashboard/queues/``: what waits to be admitted, per priority and per job type (depth,
and latency: the age of the oldest ready job), the pauses with pause and resume, and every
worker with quiet and stop. Each action is a confirm-then-act POST (``common``).

Ready means what admission would weigh now: pending or retrying, parents done, time come
(paused jobs included, shown as paused). Queued jobs (admitted, in the broker) are the
broker's queue lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from admin_api import access, metrics
from admin_api.console import pausing, workers
from admin_api.console.common import (
    bad_request,
    confirm_page,
    confirmed_count,
    done_page,
    operator_action,
    operator_page,
)
from jobs.models import Job, Pause, Priority
from jobs.types import registered_types

# The ready jobs by type and priority, with the age of the oldest (its wait counts from the
# later of its submit and its time, as READY_ORDER's does). One scan of job_ready_idx's rows
# (pending or retrying with no parent left); locks nothing.
READY_DEPTHS = """
SELECT type, priority, count(*) AS ready,
       EXTRACT(EPOCH FROM now() - min(GREATEST(created_at, COALESCE(next_attempt_at, run_at))))::float8
           AS oldest_seconds
FROM jobs_job
WHERE status IN ('pending', 'retrying') AND pending_parents = 0
  AND (next_attempt_at IS NULL OR next_attempt_at <= now())
GROUP BY type, priority
"""


@dataclass
class Depth:
    name: str
    ready: int = 0
    oldest_seconds: float | None = None
    paused: Pause | None = None

    def add(self, ready: int, oldest: float | None) -> None:
        self.ready += ready
        if oldest is not None:
            self.oldest_seconds = max(self.oldest_seconds or 0.0, oldest)


def depths(pauses: list[Pause]) -> tuple[list[Depth], list[Depth]]:
    """(per priority, every priority listed; per job type, those with ready jobs or a
    pause). One query."""
    with connection.cursor() as cursor:
        cursor.execute(READY_DEPTHS)
        rows = cursor.fetchall()
    by_priority = {p.value: Depth(str(p.label)) for p in Priority}
    by_type: dict[str, Depth] = {}
    for job_type, priority, ready, oldest in rows:
        by_priority[priority].add(ready, oldest)
        by_type.setdefault(job_type, Depth(job_type)).add(ready, oldest)
    for pause in pauses:
        if pause.priority is not None:
            by_priority[pause.priority].paused = pause
        elif pause.job_type is not None:
            by_type.setdefault(pause.job_type, Depth(pause.job_type)).paused = pause
    return list(by_priority.values()), sorted(by_type.values(), key=lambda d: d.name)


@operator_page
@require_GET
def queues_view(request: HttpRequest) -> HttpResponse:
    pauses = pausing.pause_list()
    per_priority, per_type = depths(pauses)
    context = {
        "per_priority": per_priority,
        "per_type": per_type,
        "queued": metrics.queue_depth(),
        "pauses": pauses,
        "workers": workers.worker_rows(),
        "job_types": registered_types(),
        "priorities": Priority.labels,
        "may_operate": access.may_operate(request.user),
    }
    return render(request, "dashboard/queues.html", context)


def _pause_target(request: HttpRequest) -> tuple[str | None, int | None] | HttpResponse:
    job_type = request.POST.get("job_type") or None
    priority = request.POST.get("priority") or None
    if (job_type is None) == (priority is None):
        message = "give exactly one of job_type and priority"
        return bad_request({"job_type": message, "priority": message})
    if job_type is not None and len(job_type) > 255:
        return bad_request({"job_type": "at most 255 characters"})
    if priority is not None and priority not in Priority.labels:
        return bad_request({"priority": f"one of {', '.join(Priority.labels)}"})
    return job_type, None if priority is None else int(Priority.by_name(priority))


def _waiting(job_type: str | None, priority: int | None) -> int:
    """How many jobs a pause holds back now: those waiting with no parent left (over
    job_ready_idx; the ones still waiting for parents are held once those complete)."""
    qs = Job.objects.filter(status__in=["pending", "retrying"], pending_parents=0)
    if job_type is not None:
        return qs.filter(type=job_type).count()
    return qs.filter(priority=priority or 0).count()


@operator_action
def pause_view(request: HttpRequest) -> HttpResponse:
    target = _pause_target(request)
    if isinstance(target, HttpResponse):
        return target
    job_type, priority = target
    what = (
        f"type {job_type}" if job_type is not None else f"priority {Priority(priority or 0).label}"
    )
    back = reverse("dashboard-queues")
    confirmed = confirmed_count(request)
    if confirmed is None:
        count = _waiting(job_type, priority)
        question = (
            f"Pause {what}? {count} waiting job(s) of it, and every later one, will not be "
            "admitted until it is resumed (running ones finish)."
        )
        # A pause touches the type even with no job waiting: confirm at least 1.
        return confirm_page(
            request, title="Pause", question=question, count=max(count, 1), back=back
        )
    try:
        pausing.pause_create(
            actor=request.user,
            job_type=job_type,
            priority=priority,
            reason=request.POST.get("reason", "")[:200],
        )
    except pausing.AlreadyPaused as exc:
        return done_page(request, title="Pause", message=str(exc), back=back)
    return done_page(
        request, title="Pause", message=f"Paused {what}: its jobs wait until resumed.", back=back
    )


@operator_action
def resume_view(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("pause", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 18):
        return bad_request({"pause": "a pause's id"})
    pause = Pause.objects.filter(id=int(raw)).first()
    back = reverse("dashboard-queues")
    if pause is None:
        return done_page(
            request, title="Resume", message="That pause was already resumed.", back=back
        )
    if confirmed_count(request) is None:
        count = _waiting(pause.job_type, pause.priority)
        question = f"Resume {pause.target}? {count} waiting job(s) of it become admissible at once."
        return confirm_page(
            request, title="Resume", question=question, count=max(count, 1), back=back
        )
    done = pausing.pause_delete(actor=request.user, pause_id=pause.id)
    message = (
        f"Resumed {pause.target}: its jobs are dispatched now."
        if done
        else "That pause was already resumed."
    )
    return done_page(request, title="Resume", message=message, back=back)


def _worker_action(request: HttpRequest, verb: str, act: Any) -> HttpResponse:
    name = request.POST.get("worker", "")
    if not name or len(name) > 255:
        return bad_request({"worker": "a worker's name"})
    if not workers.known_worker(name):
        return bad_request({"worker": f"no worker {name[:64]} is alive"})
    back = reverse("dashboard-queues")
    if confirmed_count(request) is None:
        effect = (
            "it takes no new job and finishes the ones it runs (until it restarts)"
            if verb == "quiet"
            else "it stops taking jobs, its running jobs get the shutdown grace, then it exits"
        )
        question = f"{verb.capitalize()} 1 worker, {name}: {effect}?"
        return confirm_page(request, title=verb.capitalize(), question=question, count=1, back=back)
    answered = act(actor=request.user, name=name)
    message = (
        f"{verb.capitalize()}: {name} answered."
        if answered
        else f"{verb.capitalize()}: sent to {name}, which did not answer within {workers.CONTROL_TIMEOUT:g}s."
    )
    return done_page(request, title=verb.capitalize(), message=message, back=back)


@operator_action
def quiet_view(request: HttpRequest) -> HttpResponse:
    return _worker_action(request, "quiet", workers.worker_quiet)


@operator_action
def stop_view(request: HttpRequest) -> HttpResponse:
    return _worker_action(request, "stop", workers.worker_stop)


urlpatterns = [
    path("queues/", queues_view, name="dashboard-queues"),
    path("queues/pause/", pause_view, name="dashboard-pause"),
    path("queues/resume/", resume_view, name="dashboard-resume"),
    path("workers/quiet/", quiet_view, name="dashboard-worker-quiet"),
    path("workers/stop/", stop_view, name="dashboard-worker-stop"),
]
