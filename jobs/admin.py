"""The Django admin for operators: browse jobs, their edges, logs and dead letters; manage
the limit rules. An on-call viewer looks and changes nothing (``jobs.admin_access``).

The admin never writes ``Job.status`` itself: jobs, edges and logs are read-only here, and
the two actions that change state go through the services (``job_cancel``,
``dead_letter_requeue``), which go through ``transitions.py``. Saving a job from a form
would write every column back, status included, from a value read seconds earlier, and
adding an edge by hand would skip the ``pending_parents`` counter; so neither is offered.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import redis
from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from jobs.admin_access import ViewerReadOnlyAdmin, may_act
from jobs.engine import limits
from jobs.engine.cancel import job_cancel
from jobs.engine.deadletter import dead_letter_requeue
from jobs.errors import JobConflict
from jobs.models import DeadLetter, ExecutionLog, Job, JobDependency, Limit
from jobs.types import registered_types

#: How many log rows a job's change page shows (the newest ones, oldest first).
LOG_INLINE_LIMIT = 50


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]
    """An unfiltered changelist counts from the planner's statistics instead of a full
    ``COUNT(*)`` over millions of rows; a filtered one (usually small) counts exactly."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is None or query.where:
            return super().count
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [query.model._meta.db_table],
            )
            row = cursor.fetchone()
        estimate = int(row[0]) if row else -1
        # reltuples is -1 (never analysed) or 0 for a small, young table: count it then.
        return estimate if estimate > 10_000 else super().count


class ReadOnlyAdminMixin:
    """No add, change or delete through forms; staff with view permission can look."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


class UuidSearchMixin:
    """Search by the ids in ``uuid_search_fields``: a term that is a UUID matches them
    exactly (an index lookup); any other term matches nothing. Several terms must all match."""

    uuid_search_fields: tuple[str, ...] = ()
    # Only so that the admin shows the search box (typed as ModelAdmin types it).
    search_fields: ClassVar[list[str] | tuple[str, ...]] = ("id",)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        for term in search_term.split():
            value = _as_uuid(term)
            if value is None:
                queryset = self.search_other(queryset, term)
            else:
                queryset = queryset.filter(
                    Q.create([(name, value) for name in self.uuid_search_fields], connector=Q.OR)
                )
        return queryset, False

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        return queryset.none()


class JobTypeFilter(admin.SimpleListFilter):
    """Filter by type, listing the registered types (no ``SELECT DISTINCT`` over all jobs)."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in registered_types()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(type=value) if value else queryset


class ParentEdgeInline(ReadOnlyAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    """The jobs this job waits for (its parents)."""

    model = JobDependency
    fk_name = "job"
    verbose_name = "depends on"
    verbose_name_plural = "depends on (parents)"
    fields = ("depends_on", "parent_status")
    readonly_fields = ("depends_on", "parent_status")
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobDependency]:
        return super().get_queryset(request).select_related("depends_on")

    @admin.display(description="parent status")
    def parent_status(self, edge: JobDependency) -> str:
        return str(edge.depends_on.status)


class RecentLogsFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Only the newest ``LOG_INLINE_LIMIT`` rows, shown oldest first (newest last)."""

    def get_queryset(self) -> QuerySet[ExecutionLog]:
        if not hasattr(self, "_recent"):
            rows = super().get_queryset()
            newest = rows.order_by("-id").values("id")[:LOG_INLINE_LIMIT]
            self._recent = rows.filter(id__in=Subquery(newest)).order_by("id")
        return self._recent


class ExecutionLogInline(ReadOnlyAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = ExecutionLog
    formset = RecentLogsFormSet
    fields = ("created_at", "attempt", "level", "from_status", "to_status", "message", "context")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = f"execution log (newest {LOG_INLINE_LIMIT}, newest last)"


@admin.register(Job)
class JobAdmin(UuidSearchMixin, ViewerReadOnlyAdmin):
    list_display = ("id", "type", "priority", "status", "attempt", "owner", "created_at", "worker")
    list_filter = ("status", "priority", JobTypeFilter)
    uuid_search_fields = ("id",)
    search_help_text = "A job id (exact), or a job type."
    list_select_related = ("owner",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    readonly_fields = ("logs_link",)
    inlines = (ParentEdgeInline, ExecutionLogInline)
    actions = ("cancel_selected",)
    fieldsets = (
        (None, {"fields": ("id", "type", "priority", "status", "owner", "batch_id", "logs_link")}),
        (
            "Attempts",
            {
                "fields": (
                    "attempt",
                    "attempt_offset",
                    "max_attempts",
                    "timeout_seconds",
                    "run_at",
                    "next_attempt_at",
                    "cancel_requested",
                    "worker",
                )
            },
        ),
        (
            "Resources, limits and dependencies",
            {"fields": ("cpu_units", "memory_mb", "concurrency_key", "pending_parents")},
        ),
        ("Data", {"fields": ("payload", "result", "error", "idempotency_key")}),
        (
            "Timestamps",
            {"fields": ("created_at", "queued_at", "started_at", "completed_at", "updated_at")},
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are submitted through the API, which validates and dispatches

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a form save would write a stale status back; see the module docstring

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting a queued or running job would strand its ledger lease

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return may_act(request, "jobs.change_job")

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        return queryset.filter(type=term)

    @admin.display(description="logs")
    def logs_link(self, job: Job) -> str:
        url = reverse("admin:jobs_executionlog_changelist") + f"?job__id__exact={job.id}"
        return format_html('<a href="{}">all log rows of this job</a>', url)

    @admin.action(description="Cancel selected jobs", permissions=("cancel",))
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """Cancel each job through ``job_cancel``; terminal jobs are skipped with a message."""
        cancelled, skipped = 0, []
        reason = f"cancelled by {request.user} in the admin"
        for job in queryset.select_related(None).only("id", "status"):
            if job.is_terminal:
                skipped.append(f"{job.id} ({job.status})")
                continue
            try:
                job_cancel(job=job, reason=reason)
            except JobConflict as exc:  # it finished between our read and the cancel
                skipped.append(f"{job.id} ({exc})")
                continue
            cancelled += 1
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {len(skipped)} finished job(s): {', '.join(skipped)}",
                messages.WARNING,
            )


@admin.register(JobDependency)
class JobDependencyAdmin(UuidSearchMixin, ReadOnlyAdminMixin, ViewerReadOnlyAdmin):
    list_display = ("job", "depends_on")
    list_select_related = ("job", "depends_on")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    uuid_search_fields = ("job_id", "depends_on_id")
    search_help_text = "A job id: the edges from or to that job."


@admin.register(ExecutionLog)
class ExecutionLogAdmin(UuidSearchMixin, ReadOnlyAdminMixin, ViewerReadOnlyAdmin):
    uuid_search_fields = ("job_id",)
    search_help_text = "A job id: that job's log rows."
    list_display = (
        "created_at",
        "job_id",
        "attempt",
        "level",
        "from_status",
        "to_status",
        "message",
    )
    list_filter = ("level",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100


@admin.register(DeadLetter)
class DeadLetterAdmin(UuidSearchMixin, ReadOnlyAdminMixin, ViewerReadOnlyAdmin):
    list_display = ("job", "reason", "attempts", "created_at", "requeued_at", "requeued_by")
    list_filter = ("reason", ("requeued_at", admin.EmptyFieldListFilter))
    list_select_related = ("job", "requeued_by")
    uuid_search_fields = ("job_id",)
    search_help_text = "A job id."
    show_full_result_count = False
    actions = ("redrive_selected",)

    def has_redrive_permission(self, request: HttpRequest) -> bool:
        return may_act(request, "jobs.change_job")

    @admin.action(description="Re-drive from DLQ", permissions=("redrive",))
    def redrive_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        """Re-drive each open dead letter's job through ``dead_letter_requeue``."""
        redriven, skipped = 0, []
        for letter in queryset.select_related(None).only("id", "job_id", "requeued_at"):
            if letter.requeued_at is None and dead_letter_requeue(
                job_id=letter.job_id, by=request.user
            ):
                redriven += 1
            else:
                skipped.append(str(letter.job_id))
        self.message_user(request, f"Re-drove {redriven} job(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {len(skipped)} already re-driven: {', '.join(skipped)}",
                messages.WARNING,
            )


class LimitForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Limit
        fields = ("key", "max_concurrency", "rate")

    def clean(self) -> dict[str, Any]:
        """The same checks as ``POST /admin/limits/`` (``limits.rule_problems``)."""
        data = super().clean() or {}
        problems = limits.rule_problems(
            data.get("key") or "", data.get("max_concurrency"), data.get("rate") or ""
        )
        for field, problem in problems.items():
            self.add_error(field, problem)
        return data


@admin.register(Limit)
class LimitAdmin(ViewerReadOnlyAdmin):
    """Limit rules (``jobs.engine.limits``), checked as the API checks them. A change holds
    from the next admission pass."""

    form = LimitForm
    list_display = ("key", "max_concurrency", "rate", "in_use", "updated_at")
    search_fields = ("key",)
    fields = ("key", "max_concurrency", "rate")

    @admin.display(description="in use now")
    def in_use(self, obj: Limit) -> str:
        """The leases that carry the rule's names now (from the Redis ledger)."""
        try:
            used = limits.rule_in_use(obj.key)
        except redis.RedisError:
            return "(Redis unavailable)"
        return ", ".join(f"{name}: {count}" for name, count in sorted(used.items())) or "0"


# The schedules' admin lives beside them; importing it registers it.
import jobs.schedules.admin  # noqa: E402, F401
