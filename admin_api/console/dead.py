"""``/dashboard/dead/``: the dead letters grouped as error trackers group them, a group's
letters, and re-drive or discard of a group or of one letter (count first, then act).

Discard means: the letter leaves the dead-letter queue (this page, ``GET /admin/dlq/``, the
DLQ metrics) and its job stays ``failed``; re-driving that job by id still works.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from admin_api import access
from admin_api.console import dead_letters
from admin_api.console.common import (
    bad_request,
    confirm_page,
    confirmed_count,
    done_page,
    operator_action,
    operator_page,
)
from jobs.engine.fingerprint import error_shape

_FINGERPRINT = re.compile(r"^[0-9a-f]{40}$")
#: The group of letters written without a fingerprint (raw INSERTs: the bench, old rows).
UNGROUPED = "-"


def _group_key(raw: str) -> str | None:
    """The fingerprint a URL or a form names (``-``: none), or None if it names none."""
    if raw == UNGROUPED:
        return ""
    return raw if _FINGERPRINT.match(raw) else None


@operator_page
@require_GET
def dead_view(request: HttpRequest) -> HttpResponse:
    context = {
        "groups": dead_letters.groups(),
        "max_groups": dead_letters.MAX_GROUPS,
        "may_operate": access.may_operate(request.user),
    }
    return render(request, "dashboard/dead.html", context)


def _before(raw: str | None) -> tuple[datetime, int] | str | None:
    """The keyset ``<iso time>_<id>``; a string when it is not one (the error)."""
    if not raw:
        return None
    at, _, letter = raw.rpartition("_")
    when = parse_datetime(at) if at else None
    if when is None or not (letter.isascii() and letter.isdigit() and len(letter) < 18):
        return "not a cursor of this list"
    return when, int(letter)


@operator_page
@require_GET
def group_view(request: HttpRequest, fingerprint: str) -> HttpResponse:
    key = _group_key(fingerprint)
    if key is None:
        return bad_request({"fingerprint": "not a group's fingerprint (40 hex digits)"})
    before = _before(request.GET.get("before"))
    if isinstance(before, str):
        return bad_request({"before": before})
    letters = dead_letters.group_letters(key, before=before)
    more = len(letters) > dead_letters.LETTERS_PAGE
    letters = letters[: dead_letters.LETTERS_PAGE]
    last = letters[-1] if more else None
    context = {
        "fingerprint": fingerprint,
        "letters": letters,
        "shape": error_shape(letters[0].error) if letters else "",
        "job_type": letters[0].job.type if letters else "",
        "next": f"{last.created_at.isoformat()}_{last.id}" if last else "",
        "may_operate": access.may_operate(request.user),
    }
    return render(request, "dashboard/dead_group.html", context)


def _target(request: HttpRequest) -> tuple[str | None, int | None] | HttpResponse:
    """The group or the one letter a POST names (exactly one), or the 400 naming the field."""
    group, letter = request.POST.get("group"), request.POST.get("letter")
    if (group is None) == (letter is None):
        message = "give exactly one of group and letter"
        return bad_request({"group": message, "letter": message})
    key = None if group is None else _group_key(group)
    if group is not None and key is None:
        return bad_request({"group": "not a group's fingerprint (40 hex digits)"})
    if letter is not None and not (letter.isascii() and letter.isdigit() and len(letter) < 18):
        return bad_request({"letter": "not a dead letter's id"})
    return key, None if letter is None else int(letter)


def _describe(group: str | None, letter: int | None) -> str:
    letters = dead_letters.target_letters(group=group, letter=letter)
    sample = letters.select_related("job").only("error", "job__type", "job__id").first()
    if sample is None:
        return f"group {group or UNGROUPED}" if group is not None else f"dead letter {letter}"
    if group is not None:
        return f"dead letters of {sample.job.type}: {error_shape(sample.error)}"[:300]
    return f"dead letter of job {sample.job_id}"


def _act(request: HttpRequest, verb: str) -> HttpResponse:
    target = _target(request)
    if isinstance(target, HttpResponse):
        return target
    group, letter = target
    letters = dead_letters.target_letters(group=group, letter=letter)
    what = _describe(group, letter)
    back = reverse("dashboard-dead")
    confirmed = confirmed_count(request)
    if confirmed == -1:
        return bad_request({"confirm": "the count the confirmation showed"})
    if confirmed is None:
        count = dead_letters.count_targets(letters)
        question = f"{verb.capitalize()} {count} dead letter(s): {what}?"
        if verb == "discard":
            question += " Their jobs stay failed; the letters leave the dead-letter queue."
        return confirm_page(
            request, title=verb.capitalize(), question=question, count=count, back=back
        )
    if verb == "re-drive":
        moved, revived = dead_letters.redrive(
            actor=request.user, letters=letters, most=confirmed, target=what
        )
        message = f"Re-drove {moved} job(s) ({what}); {revived} descendant(s) came back with them."
    else:
        moved = dead_letters.discard(
            actor=request.user, letters=letters, most=confirmed, target=what
        )
        message = f"Discarded {moved} dead letter(s) ({what}); their jobs stay failed."
    return done_page(request, title=verb.capitalize(), message=message, back=back)


@operator_action
def redrive_view(request: HttpRequest) -> HttpResponse:
    return _act(request, "re-drive")


@operator_action
def discard_view(request: HttpRequest) -> HttpResponse:
    return _act(request, "discard")


urlpatterns = [
    path("dead/", dead_view, name="dashboard-dead"),
    path("dead/redrive/", redrive_view, name="dashboard-dead-redrive"),
    path("dead/discard/", discard_view, name="dashboard-dead-discard"),
    path("dead/<str:fingerprint>/", group_view, name="dashboard-dead-group"),
]
