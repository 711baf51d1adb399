"""Schedules in the Django admin. A form is validated by the API's own serializer (the same
400s become form errors) and saved through ``services``, which keeps ``next_fire_at`` right;
fires are read-only. Actions pause, resume and trigger, as the API does, for those who may
change schedules (never an on-call viewer: ``jobs.admin_access``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs.admin_access import ViewerReadOnlyAdmin
from jobs.errors import JobConflict
from jobs.schedules import services
from jobs.schedules.models import Schedule, ScheduleFire
from jobs.schedules.serializers import ScheduleInputSerializer

INPUT_FIELDS = tuple(ScheduleInputSerializer().fields)


class ScheduleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Schedule
        fields = ("owner", *INPUT_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        data = {name: cleaned.get(name) for name in INPUT_FIELDS if name in cleaned}
        data["cron"] = data.get("cron") or None
        data = {
            name: value
            for name, value in data.items()
            if value is not None or name in ("cron", "interval_seconds", "start_at", "end_at")
        }
        checked = ScheduleInputSerializer(data=data)
        if not checked.is_valid():
            for name, problems in checked.errors.items():
                field = name if name in self.fields else None
                self.add_error(field, f"{problems}")
        return cleaned


class FireInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ScheduleFire
    fields = ("due_at", "manual", "outcome", "detail", "job")
    readonly_fields = fields
    ordering = ("-due_at",)
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(Schedule)
class ScheduleAdmin(ViewerReadOnlyAdmin):
    form = ScheduleForm
    list_display = (
        "name",
        "owner",
        "cron",
        "interval_seconds",
        "timezone",
        "paused",
        "next_fire_at",
    )
    list_filter = ("paused", "overlap", "catchup")
    search_fields = ("name",)
    readonly_fields = ("paused", "next_fire_at", "created_at", "updated_at")
    inlines = (FireInline,)
    actions = ("pause", "resume", "trigger")

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        timing = bool(services.TIMING_FIELDS & set(form.changed_data))
        services.schedule_save(schedule=obj, timing_changed=timing)

    @admin.action(description="Pause the selected schedules", permissions=("change",))
    def pause(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            services.schedule_pause(schedule=schedule)

    @admin.action(description="Resume the selected schedules", permissions=("change",))
    def resume(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            services.schedule_resume(schedule=schedule)

    @admin.action(description="Fire the selected schedules now", permissions=("change",))
    def trigger(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            try:
                job = services.schedule_trigger(schedule=schedule)
            except JobConflict as exc:
                self.message_user(request, f"{schedule}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{schedule}: fired job {job.id}")
