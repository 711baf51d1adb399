"""What ``/schedules/`` answers: a schedule, and in its detail its next due times and its
last runs with their outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from jobs.models import Job
from jobs.schedules import firing, times
from jobs.schedules.models import Catchup, FireOutcome, Overlap, Schedule, ScheduleFire

#: How many next due times and last runs ``GET /schedules/{id}`` shows.
NEXT_FIRE_TIMES = 5
LAST_RUNS = 10


class ScheduleRunSerializer(serializers.Serializer):  # type: ignore[type-arg]
    due_at = serializers.DateTimeField(help_text="The due time (the trigger's time if manual).")
    manual = serializers.BooleanField()
    outcome = serializers.ChoiceField(choices=FireOutcome.values)
    detail = serializers.CharField()
    job_id = serializers.UUIDField(allow_null=True)
    job_status = serializers.CharField(allow_null=True, help_text="The job's status now.")


class ScheduleOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The declared fields describe the document (and the schema); ``to_representation``
    builds it directly."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    cron = serializers.CharField(allow_null=True)
    interval_seconds = serializers.IntegerField(allow_null=True)
    timezone = serializers.CharField()
    job = serializers.JSONField()
    overlap = serializers.ChoiceField(choices=Overlap.values)
    catchup = serializers.ChoiceField(choices=Catchup.values)
    catchup_limit = serializers.IntegerField()
    start_at = serializers.DateTimeField(allow_null=True)
    end_at = serializers.DateTimeField(allow_null=True)
    paused = serializers.BooleanField()
    next_fire_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, schedule: Schedule) -> dict[str, Any]:
        return {
            "id": str(schedule.id),
            "name": schedule.name,
            "cron": schedule.cron or None,
            "interval_seconds": schedule.interval_seconds,
            "timezone": schedule.timezone,
            "job": schedule.job,
            "overlap": schedule.overlap,
            "catchup": schedule.catchup,
            "catchup_limit": schedule.catchup_limit,
            "start_at": _iso(schedule.start_at),
            "end_at": _iso(schedule.end_at),
            "paused": schedule.paused,
            "next_fire_at": _iso(schedule.next_fire_at),
            "created_at": _iso(schedule.created_at),
            "updated_at": _iso(schedule.updated_at),
        }


class ScheduleDetailOutputSerializer(ScheduleOutputSerializer):
    next_fire_times = serializers.ListField(
        child=serializers.DateTimeField(), help_text="The next due times (none while paused)."
    )
    last_runs = ScheduleRunSerializer(many=True, help_text="The last fires, newest first.")

    def to_representation(self, schedule: Schedule) -> dict[str, Any]:
        document = super().to_representation(schedule)
        document["next_fire_times"] = [_iso(t) for t in next_fire_times(schedule)]
        document["last_runs"] = last_runs(schedule)
        return document


def next_fire_times(schedule: Schedule, count: int = NEXT_FIRE_TIMES) -> list[datetime]:
    first = schedule.next_fire_at
    if first is None or schedule.paused:
        return []
    later = times.fires_after(firing.timing_of(schedule), first, count=count - 1, grid=first)
    return [first, *later]


def last_runs(schedule: Schedule, count: int = LAST_RUNS) -> list[dict[str, Any]]:
    fires = list(ScheduleFire.objects.filter(schedule=schedule).order_by("-due_at", "-id")[:count])
    statuses = dict(
        Job.objects.filter(id__in=[f.job_id for f in fires if f.job_id]).values_list("id", "status")
    )
    return [
        {
            "due_at": _iso(fire.due_at),
            "manual": fire.manual,
            "outcome": fire.outcome,
            "detail": fire.detail,
            "job_id": str(fire.job_id) if fire.job_id else None,
            "job_status": statuses.get(fire.job_id) if fire.job_id else None,
        }
        for fire in fires
    ]


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the jobs API writes times."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
