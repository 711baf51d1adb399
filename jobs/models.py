"""The job store: jobs, their dependency edges, their logs and the dead-letter queue."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast


class JobStatus(models.TextChoices):
    PENDING = "pending", "pending"
    """Waiting for its parents, for its time (``run_at``), or for resources; also where a
    stopping worker hands back an attempt it did not finish (uncharged)."""
    QUEUED = "queued", "queued"
    """Admitted: resources reserved in the ledger and its message published to Celery."""
    RUNNING = "running", "running"
    """A worker has started the current attempt."""
    RETRYING = "retrying", "retrying"
    """An attempt failed with attempts left; waits for ``next_attempt_at``, holding nothing."""
    COMPLETED = "completed", "completed"
    """The handler returned; ``result`` holds what it returned. Terminal."""
    FAILED = "failed", "failed"
    """The last attempt failed; a DeadLetter row says why. Terminal until re-driven."""
    CANCELLED = "cancelled", "cancelled"
    """Cancelled by its owner, or because a parent failed or was cancelled. Terminal."""


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
#: States the dispatcher admits from.
ADMITTABLE_STATUSES = (JobStatus.PENDING, JobStatus.RETRYING)


class Priority(models.IntegerChoices):
    """Stored as a rank so that ``ORDER BY priority`` is critical first; shown by name."""

    CRITICAL = 0, "critical"
    HIGH = 1, "high"
    NORMAL = 2, "normal"
    LOW = 3, "low"

    @classmethod
    def by_name(cls, name: str) -> Priority:
        return {p.label: p for p in cls}[name]


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the owner_* indexes below all start with it. Every status change
    # writes an entry in each index of this table, so each one costs on the hot path.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs", db_index=False
    )
    type = models.CharField(max_length=255)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    payload = models.JSONField(default=dict, blank=True)
    cpu_units = models.PositiveIntegerField(default=1)
    memory_mb = models.PositiveIntegerField(default=128)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    attempt = models.PositiveSmallIntegerField(
        default=0, help_text="Attempts admitted so far; the current attempt's number."
    )
    # max_attempts counts only charged attempts: attempt - attempt_offset. The attempt number
    # itself only grows (it is the fencing token), so the uncharged ones are counted here.
    attempt_offset = models.PositiveSmallIntegerField(
        default=0,
        help_text="Attempts not charged against max_attempts: those spent before the last "
        "re-drive from the dead-letter queue, and those handed back by a stopping worker.",
    )
    timeout_seconds = models.PositiveIntegerField(default=3600)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    # db_default too: a raw INSERT that does not name the column (the bench's) stores "".
    concurrency_key = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text="Names the limits that apply to the job, besides its type's (e.g. tenant:42).",
    )
    batch_id = models.UUIDField(null=True, blank=True, db_index=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    pending_parents = models.PositiveIntegerField(
        default=0, help_text="How many parents have not completed yet; 0 means dependencies met."
    )
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The one gate of time admission reads: not admitted before it. A delayed job's run_at,
    # then a retry's backoff; admission clears it. run_at keeps what the client asked for.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    run_at = models.DateTimeField(
        null=True, blank=True, help_text="A delayed job's due time: not started before it."
    )
    updated_at = models.DateTimeField(auto_now=True)
    # Set on the jobs a schedule fired: which schedule, and the due time it fired for.
    schedule = models.ForeignKey(
        "jobs.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        db_index=False,
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)
    # The client's exact priority within its level (django.tasks' -100..100, larger sooner),
    # kept so a client reads back what it asked for. Admission does not order by it (yet).
    priority_rank = models.SmallIntegerField(default=0, db_default=0)

    dependencies = models.ManyToManyField(
        "self",
        through="JobDependency",
        through_fields=("job", "depends_on"),
        symmetrical=False,
        related_name="dependents",
    )

    class Meta:
        ordering: ClassVar = ["-created_at"]
        indexes: ClassVar = [
            # The dispatcher's scan: ready jobs by priority, then age.
            models.Index(
                fields=["priority", "created_at", "id"],
                condition=Q(status__in=["pending", "retrying"], pending_parents=0),
                name="job_ready_idx",
            ),
            # When the next waiting job's time comes (statements.NEXT_DUE): delayed jobs and
            # retries, the only rows with a next_attempt_at.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying"], next_attempt_at__isnull=False),
                name="job_due_idx",
            ),
            # The scheduler's sweeps of leased jobs.
            models.Index(
                fields=["status", "queued_at"],
                condition=Q(status__in=["queued", "running"]),
                name="job_leased_idx",
            ),
            # Metrics: throughput and percentiles over the last hour (admin_api.metrics).
            models.Index(
                fields=["completed_at"],
                condition=Q(status="completed"),
                name="job_completed_at_idx",
            ),
            # The charts' rollup reads the failed jobs of a bucket (with job_completed_at_idx
            # for the completed ones); entries are written only when a job fails for good.
            models.Index(
                fields=["completed_at"], condition=Q(status="failed"), name="job_failed_at_idx"
            ),
            # The counts by status and priority (admin_api.metrics) read this small index
            # alone (an index-only scan; deduplicated, a few MB for a million jobs). Its
            # predicate is always true (the column's CHECK): only a query that says it, the
            # counts, may use it; the dispatcher's ready scan took it over job_ready_idx.
            models.Index(
                fields=["status", "priority"],
                condition=Q(priority__gte=0),
                name="job_status_priority_idx",
            ),
            # The console: the newest jobs of everyone (staff, viewers), newest first.
            models.Index(fields=["created_at", "id"], name="job_created_idx"),
            # GET /jobs/: newest first per owner, optionally filtered.
            models.Index(fields=["owner", "-created_at"], name="job_owner_created_idx"),
            models.Index(fields=["owner", "status", "-created_at"], name="job_owner_status_idx"),
            models.Index(
                fields=["owner", "priority", "-created_at"], name="job_owner_priority_idx"
            ),
            models.Index(fields=["owner", "type", "-created_at"], name="job_owner_type_idx"),
            # The console's jobs page (admin_api.console.jobs_query), besides job_created_idx
            # for every job newest first: filtered by status or type, in keyset order; the
            # idempotency-key search across owners (partial: most jobs have no key). By
            # status: the ended jobs, the
            # ones that pile up, by (status, created_at); the live ones (few: the backlog) by
            # created_at alone, the status a filter. Not one (status, created_at) index over
            # all: with the live statuses as its key, the admission's ready scan took it
            # instead of job_ready_idx (test_indexes.test_index_scan_for_ready).
            models.Index(
                fields=["status", "-created_at", "-id"],
                condition=Q(status__in=["completed", "failed", "cancelled"]),
                name="job_ended_created_idx",
            ),
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(status__in=["pending", "queued", "running", "retrying"]),
                name="job_live_created_idx",
            ),
            models.Index(fields=["type", "-created_at", "-id"], name="job_type_created_idx"),
            models.Index(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_idempotency_key_idx",
            ),
            # A schedule's runs (its overlap policy asks for the unfinished ones). Partial: the
            # jobs no schedule fired, nearly all of them, write no entry.
            models.Index(
                fields=["schedule"], condition=Q(schedule__isnull=False), name="job_schedule_idx"
            ),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_owner_idempotency_key_uniq",
            ),
            models.CheckConstraint(condition=Q(cpu_units__gte=1), name="job_cpu_units_positive"),
            models.CheckConstraint(condition=Q(memory_mb__gte=1), name="job_memory_mb_positive"),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1), name="job_max_attempts_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"

    @property
    def priority_name(self) -> str:
        return str(Priority(self.priority).label)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class JobDependency(models.Model):
    """An edge ``job -> depends_on``: ``job`` may start only once ``depends_on`` completed."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="parent_edges")
    depends_on = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="child_edges")

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["job", "depends_on"], name="jobdependency_pair_uniq"),
            models.CheckConstraint(
                condition=~Q(job=models.F("depends_on")), name="jobdependency_no_self_edge"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} -> {self.depends_on_id}"


class LogLevel(models.TextChoices):
    DEBUG = "debug", "debug"
    INFO = "info", "info"
    WARNING = "warning", "warning"
    ERROR = "error", "error"


#: ``pg_current_xact_id()::text::bigint``: the id of the transaction writing the row (xid8
#: has no cast to bigint; its text form is the number).
CURRENT_XACT_ID = Cast(
    Cast(
        models.Func(function="pg_current_xact_id", output_field=models.TextField()),
        models.TextField(),
    ),
    models.BigIntegerField(),
)
#: ``pg_current_snapshot()::text``, as ``xmin:xmax:xip,...``: the transactions the writing
#: statement saw as still running (xip), or not started yet (>= xmax).
CURRENT_SNAPSHOT = Cast(
    models.Func(function="pg_current_snapshot", output_field=models.TextField()),
    models.TextField(),
)


class ExecutionLog(models.Model):
    """One line of a job's history: every state change writes one; handlers log through it."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: log_job_id_idx (job, id) serves every look-up by job. No database
    # constraint either: a log row is only ever written by the statement that creates or locks
    # its job (jobs.api.submit, jobs.engine.statements), and deleting a job goes through Django's
    # collector, which deletes its logs first; the constraint's check cost a row lock and an
    # index probe per log row, four per job.
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="logs", db_index=False, db_constraint=False
    )
    attempt = models.PositiveSmallIntegerField(default=0)
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Filled in by PostgreSQL on every insert (the engine's statements name neither column):
    # the transaction that wrote the row, and what that statement's snapshot saw as finished.
    # A cursor names a row; they say which rows could still commit after it (jobs.live.resume).
    # NULL only in rows written before the columns existed (adding them rewrote nothing).
    xact_id = models.BigIntegerField(db_default=CURRENT_XACT_ID, null=True, editable=False)
    snapshot = models.TextField(db_default=CURRENT_SNAPSHOT, null=True, editable=False)

    class Meta:
        ordering: ClassVar = ["id"]
        indexes: ClassVar = [
            models.Index(fields=["job", "id"], name="log_job_id_idx"),
            # Resuming a feed reads the rows of recent transactions (xact_id >= a cursor's
            # xmin). Rows are appended in roughly xact_id order, so a BRIN index finds them
            # for almost nothing on the insert path (a B-tree would be one more per row).
            BrinIndex(fields=["xact_id"], name="log_xact_id_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.attempt} {self.level}: {self.message[:60]}"


class DeadLetterReason(models.TextChoices):
    MAX_ATTEMPTS = "max_attempts", "max_attempts"
    TIMEOUT = "timeout", "timeout"
    WORKER_LOST = "worker_lost", "worker_lost"
    NON_RETRYABLE = "non_retryable", "non_retryable"
    UNKNOWN_TYPE = "unknown_type", "unknown_type"
    EXCEEDS_CAPACITY = "exceeds_capacity", "exceeds_capacity"


class DeadLetter(models.Model):
    """A job that failed for good. Re-drive (``dead_letter_requeue``) is the only way out."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dead_letters")
    reason = models.CharField(max_length=32, choices=DeadLetterReason.choices)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The group of the letter: its job type, exception class and message shape, hashed
    #: (``jobs.engine.fingerprint``), written with the row.
    fingerprint = models.CharField(max_length=40, blank=True, default="", db_default="")
    #: Discarded by an operator: out of the dead-letter queue's views, the job stays failed.
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["-created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["job"],
                condition=Q(requeued_at__isnull=True),
                name="deadletter_one_open_per_job",
            )
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["reason", "-created_at"],
                condition=Q(requeued_at__isnull=True),
                name="deadletter_open_idx",
            ),
            # The console's groups (GROUP BY fingerprint with first/last seen) and a group's
            # letters newest first: the letters in the queue only.
            models.Index(
                fields=["fingerprint", "created_at", "id"],
                condition=Q(requeued_at__isnull=True, discarded_at__isnull=True),
                name="deadletter_group_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} ({self.reason})"


class Limit(models.Model):
    """A limit rule, managed by staff: how many jobs it lets hold a lease at once
    (``max_concurrency``) and/or how many it lets start per second, minute or hour (``rate``).
    ``key`` is ``type:<job type>``, an exact ``concurrency_key``, or a prefix pattern ending in
    ``*`` (``tenant:*``: one limit of its own for each distinct key under the prefix). Admission
    reads the rules on each pass (``jobs.engine.limits``); the counters are in the Redis ledger."""

    key = models.CharField(max_length=200, unique=True)
    max_concurrency = models.PositiveIntegerField(null=True, blank=True)
    rate = models.CharField(
        max_length=16, blank=True, default="", help_text='"10/s", "600/m" or "1000/h"; blank: none.'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["key"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(max_concurrency__isnull=False) | ~Q(rate=""),
                name="limit_has_a_bound",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrency__isnull=True) | Q(max_concurrency__gte=1),
                name="limit_max_concurrency_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.key


# A paused job type or priority: admission passes over their jobs (statements.READY_ORDER and
# READY_PAGE leave them out, so they block nothing behind them) until the row is deleted,
# which requests a dispatch at once (admin_api.console.pausing). In PostgreSQL, so a pause
# outlives every process; waiting_on names it (jobs.engine.waiting.paused).
class Pause(models.Model):
    #: The paused job type; null when the row pauses a priority.
    job_type = models.CharField(max_length=255, null=True, blank=True, unique=True)
    #: The paused priority; null when the row pauses a type.
    priority = models.PositiveSmallIntegerField(
        choices=Priority.choices, null=True, blank=True, unique=True
    )
    reason = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["id"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(Q(job_type__isnull=False) & Q(priority__isnull=True))
                | (Q(job_type__isnull=True) & Q(priority__isnull=False)),
                name="pause_one_type_or_priority",
            ),
        ]

    def __str__(self) -> str:
        return self.target

    @property
    def target(self) -> str:
        """``type send_email`` or ``priority high``."""
        if self.job_type is not None or self.priority is None:
            return f"type {self.job_type}"
        return f"priority {Priority(self.priority).label}"


# The schedule models are part of this app; importing them here registers them.
# So are the external worker pools' (jobs.pools) and the chart rollups' (jobs.rollups).
from jobs.pools.models import WorkerPool, WorkerToken  # noqa: E402
from jobs.rollups.models import JobRollup  # noqa: E402
from jobs.schedules.models import Schedule, ScheduleFire  # noqa: E402

__all__ = [
    "ADMITTABLE_STATUSES",
    "TERMINAL_STATUSES",
    "DeadLetter",
    "DeadLetterReason",
    "ExecutionLog",
    "Job",
    "JobDependency",
    "JobRollup",
    "JobStatus",
    "Limit",
    "LogLevel",
    "Pause",
    "Priority",
    "Schedule",
    "ScheduleFire",
    "WorkerPool",
    "WorkerToken",
]
