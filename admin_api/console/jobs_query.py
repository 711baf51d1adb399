"""The jobs page's query: search, filters and keyset pagination, read from the URL.

Every filter is a query parameter, so a view can be shared by its URL. The page is one
statement whatever the table's size: newest first by ``(created_at, id)``, a page of
``PAGE_SIZE`` + 1 rows past a cursor (the extra row says whether there is another page), never
an OFFSET or a COUNT over the table. Each filter has an index that serves it with that order
(``jobs/migrations/0010_cjobs_console_indexes``); an ordinary user's rows come from the
per-owner indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from admin_api import access
from jobs.ids import parse_uuid
from jobs.models import Job, JobStatus, Priority
from jobs.schedules.models import Schedule

PAGE_SIZE = 50
#: A search by schedule name matches at most this many schedules.
SCHEDULES_PER_NAME = 50

SEARCH_IN = [
    ("id", "job id"),
    ("idempotency_key", "idempotency key"),
    ("batch", "batch id"),
    ("schedule", "schedule (id or name)"),
]
#: The parameters that make the filter (what "all that match" means); the cursors are not.
FILTER_FIELDS = (
    "q",
    "search_in",
    "status",
    "type",
    "priority",
    "owner",
    "created_from",
    "created_to",
)


class JobFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=255, label="Search")
    search_in = forms.ChoiceField(choices=SEARCH_IN, required=False, label="in")
    status = forms.ChoiceField(choices=[("", "any"), *JobStatus.choices], required=False)
    type = forms.CharField(required=False, max_length=64)
    priority = forms.ChoiceField(
        choices=[("", "any"), *[(p, p) for p in Priority.labels]], required=False
    )
    owner = forms.CharField(required=False, max_length=150, help_text="a username")
    created_from = forms.DateTimeField(required=False, label="created from (UTC)")
    created_to = forms.DateTimeField(required=False, label="created before (UTC)")
    after = forms.CharField(required=False, max_length=100)
    before = forms.CharField(required=False, max_length=100)

    def clean_q(self) -> str:
        q = str(self.cleaned_data["q"]).strip()
        where = self.data.get("search_in") or "id"
        if q and where in ("id", "batch") and parse_uuid(q) is None:
            raise forms.ValidationError(f"a {dict(SEARCH_IN)[where]} is a UUID")
        return q

    def clean_after(self) -> tuple[datetime, UUID] | None:
        return _cursor(self.cleaned_data["after"])

    def clean_before(self) -> tuple[datetime, UUID] | None:
        return _cursor(self.cleaned_data["before"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("after") and data.get("before"):
            self.add_error("before", "give after or before, not both")
        for name in ("created_from", "created_to"):
            value = data.get(name)
            if isinstance(value, datetime) and value.tzinfo is None:
                data[name] = value.replace(tzinfo=UTC)
        return data


def _cursor(raw: str) -> tuple[datetime, UUID] | None:
    if not raw:
        return None
    stamp, _, job_id = raw.rpartition("~")
    parsed = parse_uuid(job_id)
    try:
        created = datetime.fromisoformat(stamp)
    except ValueError:
        created = None
    if parsed is None or created is None or created.tzinfo is None:
        raise forms.ValidationError("not a cursor of this page (created_at~id)")
    return created, parsed


def cursor_of(job: Job) -> str:
    return f"{job.created_at.isoformat()}~{job.id}"


def matching(user: Any, data: dict[str, Any]) -> QuerySet[Job]:
    """The jobs ``user`` may see that match the cleaned filter ``data``, unordered."""
    qs = access.visible_jobs(user)
    qs = _searched(qs, data.get("q") or "", data.get("search_in") or "id")
    if data.get("status"):
        qs = qs.filter(status=data["status"])
    if data.get("type"):
        qs = qs.filter(type=data["type"])
    if data.get("priority"):
        qs = qs.filter(priority=Priority.by_name(data["priority"]))
    if data.get("owner"):
        owners = get_user_model().objects.filter(username=data["owner"]).values("id")
        qs = qs.filter(owner_id__in=owners)
    if data.get("created_from"):
        qs = qs.filter(created_at__gte=data["created_from"])
    if data.get("created_to"):
        qs = qs.filter(created_at__lt=data["created_to"])
    return qs


def _searched(qs: QuerySet[Job], q: str, where: str) -> QuerySet[Job]:
    if not q:
        return qs
    parsed = parse_uuid(q)
    if where in ("id", "batch"):
        if parsed is None:
            return qs.none()  # the form refuses it; a caller that did not validate finds none
        return qs.filter(id=parsed) if where == "id" else qs.filter(batch_id=parsed)
    if where == "idempotency_key":
        return qs.filter(idempotency_key=q)
    if parsed is not None:
        return qs.filter(schedule_id=parsed)
    named = Schedule.objects.filter(name=q).values("id")[:SCHEDULES_PER_NAME]
    return qs.filter(schedule_id__in=named)


def newest_first(qs: QuerySet[Job]) -> QuerySet[Job]:
    return qs.order_by("-created_at", "-id")


def older_than(qs: QuerySet[Job], cursor: tuple[datetime, UUID]) -> QuerySet[Job]:
    """Rows after ``cursor`` in newest-first order: ``(created_at, id) < cursor``, written so
    that ``created_at <= c`` bounds the index scan and the tie on ``created_at`` is a filter."""
    created, job_id = cursor
    return qs.filter(Q(created_at__lte=created) & (Q(created_at__lt=created) | Q(id__lt=job_id)))


def newer_than(qs: QuerySet[Job], cursor: tuple[datetime, UUID]) -> QuerySet[Job]:
    created, job_id = cursor
    return qs.filter(Q(created_at__gte=created) & (Q(created_at__gt=created) | Q(id__gt=job_id)))


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None
    prev_cursor: str | None


COLUMNS = (
    "id",
    "type",
    "priority",
    "status",
    "attempt",
    "max_attempts",
    "created_at",
    "owner__username",
    "batch_id",
    "idempotency_key",
)


def page(user: Any, data: dict[str, Any]) -> Page:
    """One page of the matching jobs, newest first, from the cleaned cursor in ``data``
    (``after``: older rows; ``before``: newer rows; neither: the newest). One query."""
    qs = matching(user, data).select_related("owner").only(*COLUMNS)
    if data.get("before"):
        rows = list(newer_than(qs, data["before"]).order_by("created_at", "id")[: PAGE_SIZE + 1])
        more_newer = len(rows) > PAGE_SIZE
        jobs = rows[:PAGE_SIZE][::-1]
        return Page(
            jobs,
            cursor_of(jobs[-1]) if jobs else None,
            cursor_of(jobs[0]) if jobs and more_newer else None,
        )
    if data.get("after"):
        qs = older_than(qs, data["after"])
    rows = list(newest_first(qs)[: PAGE_SIZE + 1])
    jobs = rows[:PAGE_SIZE]
    more = len(rows) > PAGE_SIZE
    # From a cursor there is a newer page (the one we came from); from the top there is none.
    prev = cursor_of(jobs[0]) if jobs and data.get("after") else None
    return Page(jobs, cursor_of(jobs[-1]) if jobs and more else None, prev)


def filter_query(data: dict[str, Any], **cursor: str) -> str:
    """The URL query of the filter in ``data`` (the raw GET values) with a cursor."""
    values = {name: data[name] for name in FILTER_FIELDS if data.get(name)}
    if not values.get("q"):
        values.pop("search_in", None)  # the select always sends one; alone it means nothing
    values.update(cursor)
    return urlencode(values)
