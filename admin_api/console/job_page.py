"""What the job page (``/dashboard/jobs/<id>/``) shows beyond its fields, graph and live log,
and its two sub-pages: clone and resubmit, and the export download.

- the payload and the result as folded JSON (``job_json``), every attempt with its worker,
  times, duration, error and traceback, and their timeline (``job_attempts``);
- the actions that apply to the job's state (``job_actions``: each goes through the same
  confirmation as the jobs page's), for those who may act on it;
- **clone**: a form holding the job's body as ``POST /jobs/`` takes it, to edit and submit;
  it is validated by the same serializer (``JobInputSerializer``) and stored by the same
  service, as a new job owned by the submitter; errors are shown by field;
- **export**: a completed ``data_export`` job's file, to whoever may see the job;
- **logs.json**: the job's log lines after a cursor, which the page polls while the job is
  not finished (a handler's own lines come with no event), so its log is live.
"""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.exceptions import NotFound

from admin_api import access, audit
from admin_api.console import job_actions, job_attempts, job_json
from draconic.storage import export_storage
from jobs.api import selectors
from jobs.api.exports import CONTENT_TYPES, export_name
from jobs.api.serializers import JobInputSerializer
from jobs.api.submit import job_submit
from jobs.errors import ServiceError
from jobs.models import DeadLetter, Job, JobDependency


def extra_context(job: Job, user: Any) -> dict[str, Any]:
    """The job page's panels for ``job`` as ``user`` sees it. Four queries."""
    found = job_attempts.attempts(job)
    may_act = access.may_act_on(user, job)
    return {
        "payload_html": job_json.render(job.payload),
        "result_html": None if job.result is None else job_json.render(job.result),
        "attempts": found,
        "timeline": job_attempts.timeline(found),
        "job_actions": [
            (name, label)
            for name, label in job_actions.ACTIONS.items()
            if may_act and job_actions.applies(name, job.status)
        ],
        "may_clone": may_act,
        "has_export": _has_export(job),
        "open_letter": DeadLetter.objects.filter(job=job, requeued_at__isnull=True)
        .only("reason", "created_at")
        .first(),
    }


def _has_export(job: Job) -> bool:
    try:
        export_name(job)
    except NotFound:
        return False
    return True


def _visible_or_404(user: Any, job_id: UUID) -> Job:
    job = access.visible_jobs(user).filter(id=job_id).first()
    if job is None:
        raise Http404("no such job among those you may see")
    return job


def clone_body(job: Job, user: Any) -> dict[str, Any]:
    """The job's request as ``POST /jobs/`` takes it. Not its idempotency key (the same key
    would answer with this job rather than make a new one), and its parents only for its own
    owner (parents must be the submitter's)."""
    body: dict[str, Any] = {
        "type": job.type,
        "priority": job.priority_name,
        "payload": job.payload,
        "resource_requirements": {"cpu_units": job.cpu_units, "memory_mb": job.memory_mb},
        "max_attempts": job.max_attempts,
        "timeout_seconds": job.timeout_seconds,
    }
    if job.concurrency_key:
        body["concurrency_key"] = job.concurrency_key
    if job.owner_id == user.pk:
        parents = JobDependency.objects.filter(job=job).values_list("depends_on_id", flat=True)
        if parents:
            body["depends_on"] = [str(p) for p in parents]
    return body


def flat_errors(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A serializer's errors as ``(field path, message)`` pairs, nested fields dotted."""
    if isinstance(errors, dict):
        return [
            pair
            for name, inner in errors.items()
            for pair in flat_errors(inner, f"{prefix}.{name}" if prefix else str(name))
        ]
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            return [(prefix or "body", str(e)) for e in errors]
        return [pair for e in errors for pair in flat_errors(e, prefix)]
    return [(prefix or "body", str(errors))]


@login_required
@require_http_methods(["GET", "POST"])
def clone_view(request: HttpRequest, job_id: UUID) -> HttpResponse:
    source = _visible_or_404(request.user, job_id)
    if not access.may_act_on(request.user, source):
        return JsonResponse({"detail": "an on-call viewer may not submit jobs"}, status=403)
    if request.method == "GET":
        text = job_json.pretty(clone_body(source, request.user))
        return _clone_form(request, source, text, [], 200)
    text = request.POST.get("body", "")
    try:
        body = json.loads(text)
    except ValueError as exc:
        return _clone_form(request, source, text, [("body", f"not JSON: {exc}")], 400)
    if not isinstance(body, dict):
        return _clone_form(request, source, text, [("body", "must be a JSON object")], 400)
    data = JobInputSerializer(data=body)
    if not data.is_valid():
        return _clone_form(request, source, text, flat_errors(data.errors), 400)
    try:
        with transaction.atomic():
            # login_required: a user, never anonymous.
            owner = cast(User, request.user)
            job, created = job_submit(owner=owner, spec=data.to_spec())
            if created:
                audit.record(
                    request.user,
                    "clone",
                    f"job {source.id}",
                    job_ids=[job.id],
                    detail={"source": str(source.id)},
                )
    except ServiceError as exc:
        pairs = [(name, m) for name, msgs in exc.errors.items() for m in msgs]
        return _clone_form(request, source, text, pairs, exc.status_code)
    if created:
        messages.success(request, f"Submitted job {job.id}, a clone of {source.id}.")
    else:
        messages.success(request, f"That idempotency key already names job {job.id}.")
    return redirect("dashboard-job", job.id)


def _clone_form(
    request: HttpRequest, source: Job, text: str, errors: list[tuple[str, str]], status: int
) -> HttpResponse:
    context = {"source": source, "body": text, "errors": errors}
    return render(request, "dashboard/job_clone.html", context, status=status)


@login_required
@require_GET
def export_view(request: HttpRequest, job_id: UUID) -> FileResponse:
    """The job's export file (as ``GET /jobs/{id}/export``), for whoever may see the job."""
    job = _visible_or_404(request.user, job_id)
    try:
        name, filename, fmt = export_name(job)
        handle = export_storage().open(name, "rb")
    except (NotFound, FileNotFoundError):
        raise Http404("this job has no export file") from None
    return FileResponse(
        handle, as_attachment=True, filename=filename, content_type=CONTENT_TYPES[fmt]
    )


#: Log lines per answer of ``logs.json`` (the page asks again from the last one it got).
LOG_LINES = 200


@login_required
@require_GET
def logs_view(request: HttpRequest, job_id: UUID) -> JsonResponse:
    """The job's log lines a page that has line ``since`` may lack (``GET /jobs/{id}/logs``'s
    rule: later lines, and those of transactions still open when it was written, so a line
    can come twice: the page drops ids it has), oldest first, and the job's status now."""
    raw = request.GET.get("since", "0")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        return JsonResponse({"since": ["a log line's id (a non-negative integer)"]}, status=400)
    job = _visible_or_404(request.user, job_id)
    lines = selectors.job_logs(job=job, since=int(raw))[:LOG_LINES]
    return JsonResponse(
        {
            "status": job.status,
            "attempt": job.attempt,
            "logs": [
                {
                    "id": line.id,
                    "time": line.created_at.strftime("%H:%M:%S.%f")[:12],
                    "attempt": line.attempt,
                    "level": line.level,
                    "message": line.message,
                }
                for line in lines
            ],
        }
    )


urlpatterns = [
    path("jobs/<uuid:job_id>/logs.json", logs_view, name="dashboard-job-logs"),
    path("jobs/<uuid:job_id>/clone/", clone_view, name="console-job-clone"),
    path("jobs/<uuid:job_id>/export", export_view, name="console-job-export"),
]
