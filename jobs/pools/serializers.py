"""Input of the worker API: strict (an unknown field is a 400 naming it)."""

from __future__ import annotations

from typing import Any, TypeVar

from rest_framework import serializers

from jobs.api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
    json_problem,
)
from jobs.models import LogLevel

T = TypeVar("T")


def storable(value: T) -> T:
    """``value`` if PostgreSQL's jsonb can store it, else the field's 400 (a NUL, or too deep):
    unchecked, it fails at the insert as a DataError that names no field."""
    problem = json_problem(value)
    if problem is not None:
        raise serializers.ValidationError(problem)
    return value


class TypeSerializer(StrictSerializer):
    """``JobType.describe()`` of one type."""

    name = StrictCharField(max_length=255)
    description = StrictCharField(required=False, allow_blank=True, max_length=5000)
    payload_schema = serializers.DictField(required=False)
    defaults = serializers.DictField(required=False)
    retry = serializers.DictField(required=False, allow_null=True)


class RegisterSerializer(StrictSerializer):
    pool = StrictCharField(max_length=100)
    worker = StrictCharField(max_length=200)
    concurrency = StrictIntegerField(min_value=1, max_value=10_000)
    types = TypeSerializer(many=True)

    def validate_types(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = [t["name"] for t in value]
        if not names:
            raise serializers.ValidationError("a pool serves at least one type")
        if len(set(names)) != len(names):
            raise serializers.ValidationError("each type once")
        return value


class HeartbeatSerializer(StrictSerializer):
    pool = StrictCharField(max_length=100)
    worker = StrictCharField(max_length=200)


class AttemptSerializer(StrictSerializer):
    job_id = serializers.UUIDField()
    attempt = StrictIntegerField(min_value=1)


class StartSerializer(AttemptSerializer):
    worker = StrictCharField(max_length=200)


class LogSerializer(AttemptSerializer):
    message = StrictCharField(max_length=10_000)
    level = StrictChoiceField(choices=LogLevel.choices, default=LogLevel.INFO)
    # A field named like Serializer.context: the metaclass moves it into the declared fields.
    context = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]

    def validate_context(self, value: dict[str, Any]) -> dict[str, Any]:
        return storable(value)


class ProgressSerializer(AttemptSerializer):
    progress = serializers.JSONField()

    def validate_progress(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
            raise serializers.ValidationError("a fraction from 0 to 1, or an object")
        if isinstance(value, (int, float)) and not 0 <= value <= 1:
            raise serializers.ValidationError("a fraction from 0 to 1")
        return storable(value)


class CompleteSerializer(AttemptSerializer):
    result = serializers.JSONField(required=False, allow_null=True, default=None)

    def validate_result(self, value: Any) -> Any:
        return storable(value)


class FailSerializer(AttemptSerializer):
    error = StrictCharField(max_length=5000)
    traceback = StrictCharField(required=False, allow_blank=True, max_length=20_000, default="")
    permanent = StrictBooleanField(required=False, default=False)
    timeout = StrictBooleanField(required=False, default=False)
