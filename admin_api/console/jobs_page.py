"""The console's jobs page (``/dashboard/jobs/``) and its actions (``/dashboard/jobs/action/``).

The page is a GET: the search, the filters and the cursor are its URL (``jobs_query``). The
actions are POSTs (CSRF-checked) in two steps: without ``confirm`` the answer is a
confirmation saying how many of the selected jobs the action applies to and why the others
are skipped; with ``confirm`` it is done (``job_actions``) and the browser is sent back with a
message saying what was done. A selection is either ``ids`` (at most ``BULK_LIMIT``) or
``scope=all`` with the filter's fields: the newest ``BULK_LIMIT`` jobs that match it.

Who: operators act on every job, ordinary users on their own (another's id is a 404), on-call
viewers see the page and may do nothing (403).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from admin_api import access
from admin_api.console import job_actions, jobs_query
from admin_api.console.job_actions import ACTIONS, BULK_LIMIT
from jobs.ids import parse_uuid
from jobs.models import JobStatus, Priority
from jobs.types import registered_types


def form_errors(form: Form) -> JsonResponse:
    """A 400 naming each bad field, as the API answers."""
    errors = {name: [str(m) for m in problems] for name, problems in form.errors.items()}
    return JsonResponse(errors, status=400)


def _bad(field: str, message: str) -> JsonResponse:
    return JsonResponse({field: [message]}, status=400)


@login_required
@require_GET
def jobs_view(request: HttpRequest) -> HttpResponse:
    form = jobs_query.JobFilterForm(request.GET)
    if not form.is_valid():
        return form_errors(form)
    data = form.cleaned_data
    page = jobs_query.page(request.user, data)
    # Bounded: reads at most BULK_LIMIT + 1 index entries, never the whole table.
    matches = jobs_query.matching(request.user, data)[: BULK_LIMIT + 1].count()
    raw = request.GET.dict()
    context = {
        "form": form,
        "page": page,
        "next_query": page.next_cursor and jobs_query.filter_query(raw, after=page.next_cursor),
        "prev_query": page.prev_cursor and jobs_query.filter_query(raw, before=page.prev_cursor),
        "filter_fields": [(n, raw[n]) for n in jobs_query.FILTER_FIELDS if raw.get(n)],
        "here": request.get_full_path(),
        "matches": min(matches, BULK_LIMIT),
        "more_match": matches > BULK_LIMIT,
        "bulk_limit": BULK_LIMIT,
        "may_act": not access.is_viewer(request.user),
        "sees_all": access.sees_everything(request.user),
        "actions": ACTIONS,
        "types": sorted(registered_types()),
        "statuses": JobStatus.values,
        "priorities": list(Priority.labels),
    }
    return render(request, "dashboard/jobs.html", context)


def _selection(request: HttpRequest) -> tuple[list[tuple[UUID, str]], str, bool] | HttpResponse:
    """The selected jobs the user may act on, as ``(id, status)``, with the selection in words
    and whether more matched than the cap; or the error response."""
    actionable = access.actionable_jobs(request.user)
    if request.POST.get("scope") == "all":
        form = jobs_query.JobFilterForm(request.POST)
        if not form.is_valid():
            return form_errors(form)
        qs = jobs_query.matching(request.user, form.cleaned_data) & actionable
        rows = list(jobs_query.newest_first(qs).values_list("id", "status")[: BULK_LIMIT + 1])
        words = jobs_query.filter_query(request.POST.dict()) or "no filter"
        return rows[:BULK_LIMIT], f"jobs matching {words}", len(rows) > BULK_LIMIT
    raw = request.POST.getlist("ids")
    ids = [parse_uuid(i) for i in raw]
    if not raw:
        return _bad("ids", "select at least one job")
    if None in ids:
        return _bad("ids", "each id is a job's UUID")
    if len(set(ids)) > BULK_LIMIT:
        return _bad("ids", f"at most {BULK_LIMIT} jobs at once; use 'all that match'")
    rows = list(actionable.filter(id__in=set(ids)).values_list("id", "status"))
    if len(rows) < len(set(ids)):
        raise Http404("no such job among those you may act on")
    words = f"job {rows[0][0]}" if len(rows) == 1 else f"{len(rows)} selected jobs"
    return rows, words, False


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("console-jobs")


@login_required
@require_POST
def action_view(request: HttpRequest) -> HttpResponse:
    if access.is_viewer(request.user):
        return JsonResponse({"detail": "an on-call viewer may not change jobs"}, status=403)
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        return _bad("action", f"one of {', '.join(ACTIONS)}")
    selection = _selection(request)
    if isinstance(selection, HttpResponse):
        return selection
    rows, words, capped = selection
    the_plan = job_actions.plan(action, rows)
    if request.POST.get("confirm") != "yes":
        context = {
            "plan": the_plan,
            "verb": ACTIONS[action],
            "words": words,
            "capped": capped,
            "bulk_limit": BULK_LIMIT,
            "fields": _echo(request),
            "back": _back(request),
        }
        return render(request, "dashboard/jobs_confirm.html", context)
    outcome = job_actions.apply(request.user, the_plan, words)
    _tell(request, action, the_plan, outcome)
    return redirect(_back(request))


def _echo(request: HttpRequest) -> list[tuple[str, str]]:
    """The POST's fields, to send again with ``confirm``."""
    return [
        (name, value)
        for name in request.POST
        if name not in ("csrfmiddlewaretoken", "confirm")
        for value in request.POST.getlist(name)
    ]


def _tell(request: HttpRequest, action: str, the_plan: Any, outcome: Any) -> None:
    done = len(outcome.touched)
    text = f"{ACTIONS[action]}: {done} of {the_plan.selected} selected job(s) done"
    if outcome.revived:
        text += f", and {len(outcome.revived)} cancelled descendant(s) brought back"
    skipped = the_plan.selected - done
    if skipped:
        text += f"; {skipped} skipped"
        if outcome.missed:
            text += f" ({outcome.missed} changed state meanwhile)"
    messages.success(request, text + ".")


urlpatterns = [
    path("jobs/", jobs_view, name="console-jobs"),
    path("jobs/action/", action_view, name="console-jobs-action"),
]
