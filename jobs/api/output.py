"""What the API answers: the JSON shapes of a job, a log line and a dead letter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from jobs.engine import waiting
from jobs.models import DeadLetter, ExecutionLog, Job, Priority


class ResourceRequirementsOutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    cpu_units = serializers.IntegerField()
    memory_mb = serializers.IntegerField()


class JobOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    priority = serializers.SerializerMethodField()
    resource_requirements = serializers.SerializerMethodField()
    depends_on = serializers.SerializerMethodField()
    concurrency_key = serializers.CharField(
        allow_null=True, help_text="The key its limits count it under (null: none)."
    )

    class Meta:
        model = Job
        fields: tuple[str, ...] = (
            "id",
            "type",
            "priority",
            "status",
            "payload",
            "resource_requirements",
            "depends_on",
            "max_attempts",
            "attempt",
            "timeout_seconds",
            "idempotency_key",
            "concurrency_key",
            "batch_id",
            "result",
            "error",
            "cancel_requested",
            "worker",
            "created_at",
            "queued_at",
            "started_at",
            "completed_at",
            "next_attempt_at",
            "run_at",
            "updated_at",
            "schedule",
            "scheduled_for",
            "priority_rank",
        )
        read_only_fields: tuple[str, ...] = fields

    @extend_schema_field(serializers.ChoiceField(choices=list(Priority.labels)))
    def get_priority(self, job: Job) -> str:
        return job.priority_name

    @extend_schema_field(ResourceRequirementsOutputSerializer)
    def get_resource_requirements(self, job: Job) -> dict[str, int]:
        return {"cpu_units": job.cpu_units, "memory_mb": job.memory_mb}

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_depends_on(self, job: Job) -> list[str]:
        # A view that just created the job passes its parents in the context (no query).
        known = self.context.get("depends_on", {}).get(job.id)
        if known is not None:
            return [str(i) for i in known]
        return [str(edge.depends_on_id) for edge in job.parent_edges.all()]

    def to_representation(self, job: Job) -> dict[str, Any]:
        """The same document the declared fields describe (and the schema shows), built
        directly: DRF would build and deep-copy ~22 field objects per serializer instance,
        a measurable share of a single submit (see docs/performance.md)."""
        when = _iso
        return {
            "id": str(job.id),
            "type": job.type,
            "priority": job.priority_name,
            "status": job.status,
            "payload": job.payload,
            "resource_requirements": self.get_resource_requirements(job),
            "depends_on": self.get_depends_on(job),
            "max_attempts": job.max_attempts,
            "attempt": job.attempt,
            "timeout_seconds": job.timeout_seconds,
            "idempotency_key": job.idempotency_key,
            "concurrency_key": job.concurrency_key or None,
            "batch_id": str(job.batch_id) if job.batch_id else None,
            "result": job.result,
            "error": job.error,
            "cancel_requested": job.cancel_requested,
            "worker": job.worker,
            **{
                name: when(getattr(job, name)) if getattr(job, name) is not None else None
                for name in _TIMESTAMPS
            },
            # The schedule that fired it and the due time it fired for (null otherwise).
            "schedule": str(job.schedule_id) if job.schedule_id else None,
            "scheduled_for": when(job.scheduled_for) if job.scheduled_for else None,
            "priority_rank": job.priority_rank,
        }


def _iso(value: datetime) -> str:
    """What DRF's DateTimeField writes with USE_TZ and TIME_ZONE="UTC", without its per-value
    time-zone machinery: ISO 8601 in UTC with a ``Z``."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_TIMESTAMPS = (
    "created_at",
    "queued_at",
    "started_at",
    "completed_at",
    "next_attempt_at",
    "run_at",
    "updated_at",
)


def _reason(name: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[name], help_text="Which reason this is.")


class ParentsReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Its parents that have not completed yet."""

    reason = _reason("parents")
    job_ids = serializers.ListField(child=serializers.UUIDField())


class RunAtReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A delayed job before its time."""

    reason = _reason("run_at")
    at = serializers.DateTimeField(help_text="When it is due.")


class RetryBackoffReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A retry waiting out its backoff."""

    reason = _reason("retry_backoff")
    at = serializers.DateTimeField(help_text="The next attempt starts no earlier.")
    next_attempt = serializers.IntegerField(help_text="The number of the next attempt.")


class PausedReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Its job type or its priority is paused (``/admin/pauses/``); one per pause."""

    reason = _reason("paused")
    pause = serializers.ChoiceField(choices=["type", "priority"], help_text="What is paused.")
    job_type = serializers.CharField(required=False, help_text="type: the paused job type.")
    priority = serializers.CharField(required=False, help_text="priority: the paused priority.")
    since = serializers.DateTimeField(help_text="When it was paused.")


class LimitReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A limit rule (``/admin/limits/``) that holds it back now; one per rule and name."""

    reason = _reason("limit")
    rule = serializers.CharField(help_text="The rule's key (type:send_email, tenant:*).")
    name = serializers.CharField(
        help_text="The job's limit name the rule counts it under (type:noop, tenant:42)."
    )
    kind = serializers.ChoiceField(
        choices=["concurrency", "rate"],
        help_text="What the rule bounds: leases at once, or starts.",
    )
    in_use = serializers.IntegerField(
        required=False, help_text="concurrency: leases carrying the name now."
    )
    max_concurrency = serializers.IntegerField(
        required=False, help_text="concurrency: the rule's bound."
    )
    rate = serializers.CharField(required=False, help_text='rate: the rule\'s rate ("10/s").')
    tokens = serializers.FloatField(
        required=False, help_text="rate: tokens in the bucket now; a job needs 1 to start."
    )


class CapacityReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The cluster's free CPU or memory is less than it needs."""

    reason = _reason("capacity")
    cpu_units_free = serializers.IntegerField()
    memory_mb_free = serializers.IntegerField()
    needs = ResourceRequirementsOutputSerializer()


class NoLivePoolReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Its type is an external worker pool's, and no worker of that pool is live."""

    reason = _reason("no_live_pool")
    type = serializers.CharField(help_text="The job's type.")
    pool = serializers.CharField(help_text="The pool that registered the type.")
    message = serializers.CharField(help_text='"no live worker pool serves type <type>"')


#: The shape of one ``waiting_on`` item, told apart by ``reason`` (``jobs/engine/waiting.py``).
WAITING_REASON = PolymorphicProxySerializer(
    component_name="WaitingReason",
    serializers={
        "parents": ParentsReasonSerializer,
        "run_at": RunAtReasonSerializer,
        "retry_backoff": RetryBackoffReasonSerializer,
        "paused": PausedReasonSerializer,
        "no_live_pool": NoLivePoolReasonSerializer,
        "limit": LimitReasonSerializer,
        "capacity": CapacityReasonSerializer,
    },
    resource_type_field_name="reason",
    many=False,
)


class JobDetailOutputSerializer(JobOutputSerializer):
    """One job as ``GET /jobs/{id}`` shows it: with ``waiting_on``, which costs a query or a
    Redis call, so the lists leave it out."""

    waiting_on = serializers.SerializerMethodField(
        help_text=(
            "Why a pending or retrying job is waiting, in the order admission meets the "
            "reasons: its own (parents, run_at, retry_backoff, paused, no_live_pool) first; only when none holds, "
            "the limit rules that hold it, then capacity. [] when nothing holds it (the next "
            "dispatch admits it); null when it is not waiting."
        )
    )

    class Meta(JobOutputSerializer.Meta):
        fields = (*JobOutputSerializer.Meta.fields, "waiting_on")
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=WAITING_REASON, allow_null=True))
    def get_waiting_on(self, job: Job) -> list[dict[str, Any]] | None:
        reasons = waiting.waiting_on(job)
        if reasons is None:
            return None
        return [
            {k: _iso(v) if isinstance(v, datetime) else v for k, v in reason.items()}
            for reason in reasons
        ]

    def to_representation(self, job: Job) -> dict[str, Any]:
        return {**super().to_representation(job), "waiting_on": self.get_waiting_on(job)}


class ExecutionLogOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = ExecutionLog
        fields = (
            "id",
            "attempt",
            "level",
            "message",
            "from_status",
            "to_status",
            "context",
            "created_at",
        )
        read_only_fields = fields


class DeadLetterOutputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    job = JobOutputSerializer(read_only=True)

    class Meta:
        model = DeadLetter
        fields = (
            "id",
            "job",
            "reason",
            "error",
            "traceback",
            "attempts",
            "created_at",
            "requeued_at",
        )
        read_only_fields = fields
