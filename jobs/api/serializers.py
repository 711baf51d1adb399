"""What the jobs API accepts: request validation, every error naming its field (the shapes
of its answers are in ``output``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, NoReturn

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from jobs.api.due import MAX_DELAY, AwareDateTimeField, StrictNumberField, due_time
from jobs.api.submit import JobSpec
from jobs.engine.capacity import capacity_errors
from jobs.engine.limits import concurrency_key_problem
from jobs.models import Priority
from jobs.types import registered_types
from jobs.types.defaults import MAX_ATTEMPTS, MAX_TIMEOUT_SECONDS, SubmitDefaults, submit_defaults
from jobs.types.registry import handler_class

MAX_DEPENDENCIES = 100
#: A job type's name: a short word or a dotted path (``myproject.tasks.resize_image``).
MAX_TYPE_LENGTH = 255
MAX_JSON_DEPTH = 32
#: The resource columns' range; the capacity rule bounds a request further.
MAX_UNITS = 2**31 - 1


def json_problem(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """What makes a JSON value unstorable, or None: nesting deeper than ``limit``, or a NUL
    character in a key or a string (PostgreSQL's jsonb refuses ``\\u0000``)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "must not contain NUL characters (\\u0000)"
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > limit:
            return f"is nested deeper than {limit} levels"
        stack.extend((child, level + 1) for child in children)
    return None


def _repeated(values: list[str]) -> list[str]:
    """The values that occur more than once, sorted (linear: a batch has 1,000 keys)."""
    return sorted(v for v, n in Counter(values).items() if n > 1)


class StrictIntegerField(serializers.IntegerField):
    """An integer given as a JSON number. DRF's IntegerField also takes ``"5"``; a JSON API
    that does so hides client bugs, so strings and booleans are refused here."""

    default_error_messages = {"invalid": "A valid integer is required (a JSON number)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return int(data)


class StrictCharField(serializers.CharField):
    """A string given as a JSON string; numbers are refused instead of coerced."""

    default_error_messages = {"invalid": "Not a valid string (a JSON string is required)."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """A boolean given as JSON ``true`` or ``false``. DRF's BooleanField also takes ``"yes"``,
    ``1`` and ``"on"``; where a flag decides how much is changed (``"all": true``), it must
    be said exactly."""

    default_error_messages = {"invalid": "Must be true or false (a JSON boolean)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictChoiceField(serializers.ChoiceField):
    """A ChoiceField whose error lists the valid choices, the one place every choice of the
    API (priority, status, reason) says what it would have taken:
    ``"urgent" is not a valid choice; valid: critical, high, normal, low.``"""

    def fail(self, key: str, **kwargs: Any) -> NoReturn:
        if key == "invalid_choice":
            valid = ", ".join(self.choice_strings_to_values)
            given = str(kwargs.get("input", ""))[:100]
            raise serializers.ValidationError(
                f'"{given}" is not a valid choice; valid: {valid}.', code=key
            )
        super().fail(key, **kwargs)


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Refuses fields it does not know, so a typo (``depends_on`` vs ``dependsOn``) is a 400
    instead of a silently ignored option. ``also_allowed`` names keys that are not fields but
    are read by someone else (the paginator reads ``page`` from the same query string)."""

    also_allowed: ClassVar[tuple[str, ...]] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = [*self.fields, *self.also_allowed]
            unknown = sorted(set(data) - set(allowed))
            if unknown:
                listed = "allowed: " + ", ".join(allowed) if allowed else "this takes no fields"
                raise serializers.ValidationError(
                    {name: [f"unknown field; {listed}"] for name in unknown}
                )
        return super().to_internal_value(data)


class QueryFilterSerializer(StrictSerializer):
    """The filters of a list endpoint, read from its query string: a misspelt filter
    (``?staus=failed``) is a 400, not a list of everything. An empty value (``?type=``) means
    no filter, as DRF reads forms, so filter fields here allow blank."""

    also_allowed = ("page", "page_size", "format")  # the paginator's; DRF's format override


class NoBodySerializer(StrictSerializer):
    """The body of an endpoint that takes none: nothing, or ``{}``. A field sent to it (a
    ``reason`` to cancel, say) would be ignored, so it is refused instead."""


class ResourceRequirementsSerializer(StrictSerializer):
    """What a job needs; a value left out is its type's default (1 CPU unit and 128 MB for a
    type that sets none)."""

    cpu_units = StrictIntegerField(min_value=1, required=False)
    memory_mb = StrictIntegerField(min_value=1, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = capacity_errors(
            cpu_units=attrs.get("cpu_units", 1), memory_mb=attrs.get("memory_mb", 1)
        )
        if errors:
            raise serializers.ValidationError({k.rsplit(".", 1)[1]: [v] for k, v in errors.items()})
        return attrs


class JobInputSerializer(StrictSerializer):
    type = StrictCharField(
        max_length=MAX_TYPE_LENGTH, help_text="A registered job type (see GET /job-types/)."
    )
    priority = StrictChoiceField(
        choices=list(Priority.labels),
        required=False,
        help_text="Default: the type's default priority, else normal.",
    )
    payload = serializers.JSONField(default=dict, help_text="A JSON object, at most 64 KiB.")
    resource_requirements = ResourceRequirementsSerializer(required=False)
    depends_on = serializers.ListField(
        child=serializers.UUIDField(), default=list, max_length=MAX_DEPENDENCIES
    )
    max_attempts = StrictIntegerField(
        min_value=1, max_value=MAX_ATTEMPTS, required=False, help_text="Default: the type's."
    )
    timeout_seconds = StrictIntegerField(
        min_value=1, max_value=MAX_TIMEOUT_SECONDS, required=False, help_text="Default: the type's."
    )
    idempotency_key = StrictCharField(
        max_length=255, required=False, allow_null=True, allow_blank=False
    )
    run_at = AwareDateTimeField(
        required=False, help_text="Not started before this time (RFC 3339, with its offset)."
    )
    delay_seconds = StrictNumberField(
        min_value=0,
        max_value=MAX_DELAY.total_seconds(),
        required=False,
        help_text="Not started before this many seconds from now (instead of run_at).",
    )
    concurrency_key = StrictCharField(
        max_length=200,
        required=False,
        allow_null=True,
        help_text="The key limit rules count this job under (e.g. tenant:42).",
    )

    def validate_type(self, value: str) -> str:
        if handler_class(value) is None:
            raise serializers.ValidationError(
                f"unknown job type {value!r}; registered types: {', '.join(registered_types())}"
            )
        return value

    def validate_payload(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        problem = json_problem(value)
        if problem is not None:
            raise serializers.ValidationError(problem)
        # Counted as stored: compact UTF-8 (ensure_ascii would count "é" as six bytes).
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > settings.DRACONIC_MAX_PAYLOAD_BYTES:
            raise serializers.ValidationError(
                f"is {size} bytes; the limit is {settings.DRACONIC_MAX_PAYLOAD_BYTES} bytes"
            )
        return value

    def validate_run_at(self, value: datetime) -> datetime:
        if value - timezone.now() > MAX_DELAY:
            raise serializers.ValidationError(
                f"is more than {MAX_DELAY.days} days ahead; a job may wait at most that long"
            )
        return value

    def validate_concurrency_key(self, value: str | None) -> str | None:
        problem = None if value is None else concurrency_key_problem(value)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return value

    def validate_depends_on(self, value: list[Any]) -> list[str]:
        ids = [str(v) for v in value]
        duplicates = _repeated(ids)
        if duplicates:
            raise serializers.ValidationError(f"duplicate job ids: {', '.join(duplicates)}")
        return ids

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "run_at" in attrs and "delay_seconds" in attrs:
            both = "give run_at or delay_seconds, not both"
            raise serializers.ValidationError({"run_at": [both], "delay_seconds": [both]})
        handler = handler_class(attrs["type"])
        if handler is not None:
            errors = handler().validate_payload(attrs.get("payload") or {})
            if errors:
                raise serializers.ValidationError(
                    {"payload": [f"{field}: {msg}" for field, msg in errors.items()]}
                )
        return _with_defaults(attrs, submit_defaults(handler.defaults if handler else None))

    def to_spec(self) -> JobSpec:
        """The job to store; ``validate`` filled in every value the body left out."""
        data = self.validated_data
        resources = data["resource_requirements"]
        return JobSpec(
            type=data["type"],
            priority=Priority.by_name(data["priority"]),
            payload=data["payload"],
            cpu_units=resources["cpu_units"],
            memory_mb=resources["memory_mb"],
            max_attempts=data["max_attempts"],
            timeout_seconds=data["timeout_seconds"],
            depends_on=list(data["depends_on"]),
            idempotency_key=data.get("idempotency_key"),
            key=data.get("key"),
            run_at=due_time(data),
            concurrency_key=data.get("concurrency_key") or "",
        )


def _with_defaults(attrs: dict[str, Any], defaults: SubmitDefaults) -> dict[str, Any]:
    """``attrs`` with the type's defaults where the body gave nothing; raises the field's
    ValidationError when the resources come to more than the cluster has."""
    given = attrs.get("resource_requirements") or {}
    resources = {
        "cpu_units": given.get("cpu_units", defaults.cpu_units),
        "memory_mb": given.get("memory_mb", defaults.memory_mb),
    }
    errors = capacity_errors(**resources)
    if errors:
        nested = {key.rsplit(".", 1)[1]: [message] for key, message in errors.items()}
        raise serializers.ValidationError({"resource_requirements": nested})
    return {
        **attrs,
        "priority": attrs.get("priority") or defaults.priority,
        "resource_requirements": resources,
        "max_attempts": attrs.get("max_attempts", defaults.max_attempts),
        "timeout_seconds": attrs.get("timeout_seconds", defaults.timeout_seconds),
    }


class BatchJobInputSerializer(JobInputSerializer):
    key = StrictCharField(
        max_length=64, required=False, help_text="A name other jobs of the batch can depend on."
    )
    depends_on = serializers.ListField(
        child=StrictCharField(max_length=64),
        default=list,
        max_length=MAX_DEPENDENCIES,
        help_text="Keys of jobs in this batch, or ids of existing jobs.",
    )
    idempotency_key = None  # type: ignore[assignment]

    def validate_depends_on(self, value: list[Any]) -> list[str]:
        duplicates = _repeated(value)
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
        duplicates = _repeated([j["key"] for j in value if j.get("key")])
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
