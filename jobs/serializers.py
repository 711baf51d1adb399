"""Request and response shapes of the jobs API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import DeadLetter, ExecutionLog, Job, Priority
from jobs.services import JobSpec, capacity_errors
from workers.handlers import get_handler, registered_types

MAX_DEPENDENCIES = 100
MAX_JSON_DEPTH = 32


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a JSON value, stopping early once past ``limit``."""
    depth = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        depth = max(depth, level)
        if depth > limit:
            return depth
        stack.extend((child, level + 1) for child in items)
    return depth


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Refuses fields it does not know, so a typo (``depends_on`` vs ``dependsOn``) is a 400
    instead of a silently ignored option."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["unknown field; allowed: " + ", ".join(self.fields)] for name in unknown}
                )
        return super().to_internal_value(data)


class ResourceRequirementsSerializer(StrictSerializer):
    cpu_units = serializers.IntegerField(min_value=1, default=1)
    memory_mb = serializers.IntegerField(min_value=1, default=128)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = capacity_errors(attrs["cpu_units"], attrs["memory_mb"])
        if errors:
            raise serializers.ValidationError({k.rsplit(".", 1)[1]: [v] for k, v in errors.items()})
        return attrs


class JobInputSerializer(StrictSerializer):
    type = serializers.CharField(max_length=64, help_text="A registered job type.")
    priority = serializers.ChoiceField(choices=list(Priority.labels), default="normal")
    payload = serializers.JSONField(default=dict, help_text="A JSON object, at most 64 KiB.")
    resource_requirements = ResourceRequirementsSerializer(required=False)
    depends_on = serializers.ListField(
        child=serializers.UUIDField(), default=list, max_length=MAX_DEPENDENCIES
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, required=False)
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=86400, required=False)
    idempotency_key = serializers.CharField(
        max_length=255, required=False, allow_null=True, allow_blank=False
    )

    def validate_type(self, value: str) -> str:
        if get_handler(value) is None:
            raise serializers.ValidationError(
                f"unknown job type {value!r}; registered types: {', '.join(registered_types())}"
            )
        return value

    def validate_payload(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        if json_depth(value) > MAX_JSON_DEPTH:
            raise serializers.ValidationError(f"is nested deeper than {MAX_JSON_DEPTH} levels")
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > settings.DRACONIC_MAX_PAYLOAD_BYTES:
            raise serializers.ValidationError(
                f"is {size} bytes; the limit is {settings.DRACONIC_MAX_PAYLOAD_BYTES} bytes"
            )
        return value

    def validate_depends_on(self, value: list[Any]) -> list[str]:
        ids = [str(v) for v in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise serializers.ValidationError(f"duplicate job ids: {', '.join(duplicates)}")
        return ids

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        handler = get_handler(attrs["type"])
        if handler is not None:
            errors = handler.validate_payload(attrs.get("payload") or {})
            if errors:
                raise serializers.ValidationError(
                    {"payload": [f"{field}: {msg}" for field, msg in errors.items()]}
                )
        return attrs

    def to_spec(self) -> JobSpec:
        data = self.validated_data
        resources = data.get("resource_requirements") or {"cpu_units": 1, "memory_mb": 128}
        return JobSpec(
            type=data["type"],
            priority=Priority.by_name(data["priority"]),
            payload=data["payload"],
            cpu_units=resources["cpu_units"],
            memory_mb=resources["memory_mb"],
            max_attempts=data.get("max_attempts", settings.DRACONIC_DEFAULT_MAX_ATTEMPTS),
            timeout_seconds=data.get("timeout_seconds", settings.DRACONIC_DEFAULT_TIMEOUT_SECONDS),
            depends_on=list(data["depends_on"]),
            idempotency_key=data.get("idempotency_key"),
            key=data.get("key"),
        )


class BatchJobInputSerializer(JobInputSerializer):
    key = serializers.CharField(
        max_length=64, required=False, help_text="A name other jobs of the batch can depend on."
    )
    depends_on = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(max_length=64),
        default=list,
        max_length=MAX_DEPENDENCIES,
        help_text="Keys of jobs in this batch, or ids of existing jobs.",
    )
    idempotency_key = None  # type: ignore[assignment]

    def validate_depends_on(self, value: list[Any]) -> list[str]:
        duplicates = sorted({v for v in value if value.count(v) > 1})
        if duplicates:
            raise serializers.ValidationError(f"duplicate references: {', '.join(duplicates)}")
        return list(value)


class BatchInputSerializer(StrictSerializer):
    jobs = BatchJobInputSerializer(many=True, allow_empty=False)

    def validate_jobs(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(value) > settings.DRACONIC_MAX_BATCH_SIZE:
            raise serializers.ValidationError(
                f"{len(value)} jobs; a batch holds at most {settings.DRACONIC_MAX_BATCH_SIZE}"
            )
        keys = [j["key"] for j in value if j.get("key")]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise serializers.ValidationError(f"duplicate keys: {', '.join(duplicates)}")
        return value

    def to_specs(self) -> list[JobSpec]:
        specs = []
        for item in self.validated_data["jobs"]:
            single = BatchJobInputSerializer()
            single._validated_data = item  # type: ignore[attr-defined]
            specs.append(single.to_spec())
        return specs


class DependenciesInputSerializer(StrictSerializer):
    depends_on = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=False, max_length=MAX_DEPENDENCIES
    )

    def validate_depends_on(self, value: list[Any]) -> list[str]:
        return JobInputSerializer().validate_depends_on(value)


class ResourceRequirementsOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    cpu_units = serializers.IntegerField()
    memory_mb = serializers.IntegerField()


class JobOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    priority = serializers.SerializerMethodField()
    resource_requirements = serializers.SerializerMethodField()
    depends_on = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = (
            "id", "type", "priority", "status", "payload", "resource_requirements", "depends_on",
            "max_attempts", "attempt", "timeout_seconds", "idempotency_key", "batch_id",
            "result", "error", "cancel_requested", "worker", "created_at", "queued_at",
            "started_at", "completed_at", "next_attempt_at", "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=list(Priority.labels)))
    def get_priority(self, job: Job) -> str:
        return job.priority_name

    @extend_schema_field(ResourceRequirementsOutputSerializer)
    def get_resource_requirements(self, job: Job) -> dict[str, int]:
        return {"cpu_units": job.cpu_units, "memory_mb": job.memory_mb}

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_depends_on(self, job: Job) -> list[str]:
        return [str(edge.depends_on_id) for edge in job.parent_edges.all()]


class ExecutionLogOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = ExecutionLog
        fields = ("id", "attempt", "level", "message", "from_status", "to_status", "context", "created_at")
        read_only_fields = fields


class DeadLetterOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    job = JobOutputSerializer(read_only=True)

    class Meta:
        model = DeadLetter
        fields = ("id", "job", "reason", "error", "traceback", "attempts", "created_at", "requeued_at")
        read_only_fields = fields
