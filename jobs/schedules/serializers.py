"""What ``/schedules/`` accepts. The job template is checked by ``JobTemplateSerializer``:
POST /jobs/'s own serializer, less the two fields a template cannot use."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from rest_framework import serializers

from jobs.api.serializers import (
    JobInputSerializer,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
)
from jobs.schedules.models import Catchup, Overlap
from jobs.schedules.times import cron_problem

MAX_INTERVAL_SECONDS = 366 * 86400
MAX_CATCHUP_LIMIT = 1000


class JobTemplateSerializer(JobInputSerializer):
    """The body of POST /jobs/ that a schedule submits at each fire, validated the same way.
    Without ``idempotency_key`` (every fire would answer with the first job),
    ``depends_on`` (fixed parents would have completed, or failed, after the first run), and
    ``run_at`` / ``delay_seconds`` (the schedule says when its jobs run)."""

    idempotency_key = None  # type: ignore[assignment]
    depends_on = None  # type: ignore[assignment]
    run_at = None  # type: ignore[assignment]
    delay_seconds = None  # type: ignore[assignment]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        attrs["depends_on"] = []  # what ``to_spec`` reads
        return attrs


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class ScheduleInputSerializer(StrictSerializer):
    name = StrictCharField(max_length=200)
    cron = StrictCharField(
        max_length=200,
        required=False,
        allow_null=True,
        help_text="A standard 5-field cron expression, read in `timezone`.",
    )
    interval_seconds = StrictIntegerField(
        min_value=1, max_value=MAX_INTERVAL_SECONDS, required=False, allow_null=True
    )
    timezone = StrictCharField(max_length=64, default="UTC", help_text="An IANA time zone.")
    job = serializers.JSONField(help_text="The body of POST /jobs/ each fire submits.")
    overlap = StrictChoiceField(choices=Overlap.values, default=Overlap.ALLOW)
    catchup = StrictChoiceField(choices=Catchup.values, default=Catchup.LATEST)
    catchup_limit = StrictIntegerField(min_value=1, max_value=MAX_CATCHUP_LIMIT, default=10)
    start_at = serializers.DateTimeField(required=False, allow_null=True)
    end_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_cron(self, value: str | None) -> str | None:
        if value is None:
            return None
        problem = cron_problem(value)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return " ".join(value.split())

    def validate_timezone(self, value: str) -> str:
        if value not in _zones():
            raise serializers.ValidationError(
                f"unknown time zone {value[:64]!r}; use an IANA name such as Europe/Amsterdam"
            )
        return value

    def validate_job(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object: the body of POST /jobs/")
        template = JobTemplateSerializer(data=value)
        if not template.is_valid():
            raise serializers.ValidationError(template.errors)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("cron") is None) == (attrs.get("interval_seconds") is None):
            raise serializers.ValidationError(
                {"cron": ["give exactly one of cron and interval_seconds"]}
            )
        start, end = attrs.get("start_at"), attrs.get("end_at")
        if start is not None and end is not None and end <= start:
            raise serializers.ValidationError({"end_at": ["must be later than start_at"]})
        return attrs
